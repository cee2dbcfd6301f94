"""SIGTERM unwinds ste-mcp like Ctrl-C: children it manages are stopped, not orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

PROGRAM = textwrap.dedent(
    """
    import subprocess, sys
    import anyio
    from ste_mcp.cli import Terminated, install_signal_handlers

    async def main():
        child = subprocess.Popen(["sleep", "600"], start_new_session=True)  # like a managed vLLM
        try:
            print(child.pid, flush=True)
            await anyio.sleep(600)
        finally:
            child.terminate()
            child.wait()

    install_signal_handlers()
    try:
        anyio.run(main)
    except Terminated:
        sys.exit(143)
    """
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is not alive
        return fh.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_sigterm_stops_the_managed_children_and_exits_143() -> None:
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    assert alive(child)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child)
