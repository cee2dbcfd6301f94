"""Upstream HTTP APIs: tool specs (``specs``), the ``Tool`` contract (``tools``), argument validation
(``validation``) and pooled, allowlisted calls (``client``). Import from the module that defines a name."""
