"""Safety floor: secret redaction (``redact.py``) and untrusted-text handling (``sanitize.py``).

Every layer may import this package; it imports nothing from ``ste_mcp`` (pure standard library),
so upstream, server, memory, explorer and finetune can all use it without an upward import.
"""
