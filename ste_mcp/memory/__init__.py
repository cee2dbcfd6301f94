"""Memory: trials, exemplars and live descriptions in LanceDB (safety code lives in ``ste_mcp.safety``).

``db.Memory.open(settings)`` is the handle on the stores. Import from the module that defines a name
(``from ste_mcp.memory.exemplars import ExemplarStore``), so that reading the settings loads neither
LanceDB nor the embedding model.
"""
