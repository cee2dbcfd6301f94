"""Fine-tuning: LoRA adapters from approved exemplars, gated promotion, registry, export, hot-load.

A round (``rounds.run_round`` / ``rounds.round_from_settings``) builds the paper-shaped dataset with replay
of earlier rounds, trains in a child process (``python -m ste_mcp.finetune.train``, TRL + peft), gates the
candidate against the current adapter on held-out exemplars, and registers it atomically. The promoted
adapter is served as a runtime LoRA or merged into the base weights (``merge``, ``serving``).
Import from the module that defines a name, so that reading the settings loads neither torch nor LanceDB.
"""
