"""The sandboxed worker pool of the math solver: warm processes, each query under a time and memory limit.

Even bounded input can keep sympy busy for minutes (``expand (x+y+z+a+b+c+t)^30``), so ``mathematics``
runs in a worker process that is killed when a query overruns its time limit (a thread could not be
stopped); the query then gets a 422 naming the limit."""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from ste_mcp.toolbox.api import ToolboxError, invalid
from ste_mcp.toolbox.wolfram.solvers import UNANSWERABLE, Answer, math_names, mathematics

MATH_MEMORY_LIMIT = 1024**3  # address space of a math worker, bytes (Linux; elsewhere not enforced)
MATH_WORKERS = 2  # math queries computed at the same time; more wait for a free worker
WORKER_START_TIMEOUT_S = 120.0  # starting a worker (a Python process importing sympy); not in the query limit


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _serve(conn: Any, memory_limit: int, parent: int) -> None:
    """A math worker's main loop: query in, ``(status, value)`` out, until the pipe closes.

    ``status`` is ``"ok"`` (value: the answer or ``None``), ``"memory"`` (out of memory: the worker
    exits) or ``"error"`` (value: an unexpected exception, as text).
    """
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    math_names()  # import sympy before the memory limit
    try:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        if hard == resource.RLIM_INFINITY or hard > memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, hard))
    except (ImportError, OSError, ValueError):
        pass  # no RLIMIT_AS here: the time limit still applies
    conn.send(("ready", None))
    while True:
        try:
            query = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", mathematics(query))
        except UNANSWERABLE:
            reply = ("ok", None)  # what the engine cannot handle gets "no result"
        except MemoryError:
            reply = ("memory", None)
        except Exception as exc:  # reported to the parent, which raises it
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (MemoryError, OSError):
            return
        if reply[0] == "memory":
            return


def _worker_main(fd: int, memory_limit: int, parent: int) -> None:
    """Entry point of a math worker process (see ``_Worker``)."""
    _serve(Connection(fd), memory_limit, parent)


_BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from ste_mcp.toolbox.wolfram.workers import _worker_main; _worker_main(*map(int, sys.argv[2:]))"
)


class _Worker:
    """One math worker: a fresh interpreter (``python -c``, with this process's ``sys.path``) and a
    socket pair wrapped in ``multiprocessing`` connections. A plain subprocess rather than a
    multiprocessing 'spawn' process: that would re-import the parent's ``__main__`` module (an
    unguarded script would start its work again); fork would copy a threaded server. The worker's
    stdin/stdout are /dev/null (stdout may be an MCP stdio channel); stderr is inherited."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.conn = Connection(ours.detach())
        try:
            args = [json.dumps(sys.path), str(theirs.fileno()), str(MATH_MEMORY_LIMIT), str(os.getpid())]
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            self.conn.close()
            raise
        finally:
            theirs.close()
        try:
            if not self.conn.poll(WORKER_START_TIMEOUT_S):
                raise RuntimeError(f"math worker did not start within {WORKER_START_TIMEOUT_S:g} s")
            self.conn.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise RuntimeError(f"math worker did not start (exit code {self.process.returncode})") from exc
        except BaseException:
            self.kill()
            raise

    def alive(self) -> bool:
        return self.process.poll() is None

    def ask(self, query: str, limit: float) -> tuple[str, Any]:
        """The worker's reply; ``TimeoutError`` past ``limit``, ``EOFError``/``OSError`` if it died."""
        self.conn.send(query)
        if not self.conn.poll(limit):
            raise TimeoutError
        return self.conn.recv()

    def kill(self) -> None:
        """Stop the process (SIGKILL: whatever it computes) and close the connection."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.conn.close()


class MathWorkers:
    """Warm math worker processes, reused across queries.

    A query takes an idle worker (or starts one: about a second, not counted in the time limit),
    sends the query over a pipe and waits at most the time limit; a worker that overruns it, runs
    out of memory or dies is killed and replaced on the next query. Reusing warm workers keeps the
    fast path fast (a pipe round trip), and a killed process really stops the computation, which a
    thread could not. At most ``size`` queries compute at once.
    """

    def __init__(self, size: int = MATH_WORKERS):
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
        try:
            return _Worker()
        except (OSError, RuntimeError) as exc:
            raise ToolboxError(500, f"the math engine could not start: {exc}") from exc

    def _give(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def warm(self) -> None:
        """Start one worker now, if none is idle, rather than on the first query."""
        with self._slots:
            self._give(self._take())

    def run(self, query: str, limit: float) -> Answer | None:
        """``mathematics(query)`` in a worker; ``ToolboxError`` (422) past ``limit`` or out of memory."""
        with self._slots:
            worker = self._take()
            try:
                status, value = worker.ask(query, limit)
            except TimeoutError:
                worker.kill()
                raise invalid(
                    "input",
                    f"could not be computed within the time limit of {limit:g} s; try a simpler query",
                ) from None
            except (EOFError, OSError) as exc:
                worker.kill()
                code = worker.process.returncode
                raise ToolboxError(
                    500, f"the math engine stopped while computing this query (exit code {code})"
                ) from exc
            except BaseException:  # interrupted: the worker's state is unknown
                worker.kill()
                raise
            if status == "ok":
                self._give(worker)
                return value
            worker.kill()
            if status == "memory":
                raise invalid(
                    "input",
                    f"needs more than the memory limit of {MATH_MEMORY_LIMIT // 1024**2} MiB to compute; "
                    "try a simpler query",
                )
            raise RuntimeError(f"math worker failed: {value}")

    def close(self) -> None:
        """Stop the idle workers."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


pool = MathWorkers()
atexit.register(pool.close)
