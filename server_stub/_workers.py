"""``--workers N``: N server processes, each listening on its own socket of one port.

Why not uvicorn's workers: they share one listening socket, and the process that wakes
first accepts every connection waiting (asyncio accepts in a loop), so clients that
open their connections together (a load balancer, a connection pool, wrk) all land on
one worker while the others idle. Measured with 2 workers on PostgreSQL and 32
connections: one worker at 82 % of a core, the other idle, 0.8x of one process. With
``SO_REUSEPORT`` (Linux) each worker has its own listening socket on the port and the
kernel spreads new connections over them by address.

Policy:
- the parent binds the port first (``SO_REUSEPORT``, not listening: it accepts nothing),
  so ``--port 0`` has a port to give every worker and no other program takes it;
- workers are spawned processes that read their settings from the ERRDISCOUNT_*
  environment (`worker_environment`), as uvicorn's did;
- the ``listening on`` line is printed once every worker listens: before that, a
  connection would be refused rather than queued;
- a worker that cannot start stops the others and the start fails (`CannotStart`);
  a worker that dies later is replaced, and a warning logged;
- SIGTERM or SIGINT stops every worker gracefully (uvicorn's shutdown, 5 s), then the
  parent returns; a parent killed outright takes its workers with it
  (``PR_SET_PDEATHSIG``), so none is left holding the port.
Elsewhere (no load-balancing ``SO_REUSEPORT``) `serve_workers` is not used: the caller
falls back to uvicorn's shared socket.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import logging.config
import multiprocessing
import multiprocessing.synchronize
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType

from ._serving import serve
from ._settings import Settings, settings_from_args, worker_environment
from .web._logging import log_config

__all__ = ["REUSE_PORT_BALANCES", "WorkersFailed", "bind_port", "serve_workers"]

log = logging.getLogger("server_stub")

#: True where ``SO_REUSEPORT`` spreads connections over the sockets (Linux 3.9+)
REUSE_PORT_BALANCES = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
_PR_SET_PDEATHSIG = 1
#: how long a worker may take to listen (opening the store, the app's lifespan)
START_TIMEOUT_SECONDS = 60.0
#: how long stopped workers get to finish (uvicorn's graceful shutdown is 5 s)
STOP_TIMEOUT_SECONDS = 15.0


class WorkersFailed(Exception):
    """A worker could not start; the message is the line the operator sees."""


def bind_port(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not listening), with TCP_NODELAY.

    Raises:
        OSError: the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # uvicorn wraps a socket passed by fd as AF_UNIX, and asyncio then leaves
        # TCP_NODELAY off on the connections it accepts: Nagle holds the second write of
        # every response for the client's delayed ACK (~40 ms). Set on the listening
        # socket, the option is inherited by every accepted connection.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _die_with_parent() -> None:
    """SIGTERM this process when the parent dies (even by SIGKILL): no orphan keeps the port.

    Linux's ``PR_SET_PDEATHSIG``; if the parent is already gone, stop now.
    """
    spawner = multiprocessing.parent_process()
    parent = os.getppid() if spawner is None else spawner.pid
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        log.warning("worker %s cannot ask to stop with its parent", os.getpid())
    if os.getppid() != parent:
        sys.exit(0)


def _run_worker(
    environment: dict[str, str], host: str, port: int, ready: multiprocessing.synchronize.Event
) -> None:
    """One worker process: the app on its own ``SO_REUSEPORT`` socket of the port."""
    _die_with_parent()
    os.environ.update(environment)
    settings = settings_from_args([])
    logging.config.dictConfig(log_config(settings.log_format))
    sock = bind_port(host, port, reuse_port=True)
    sock.listen(2048)
    started = asyncio.run(serve(settings, sockets=[sock], on_started=lambda _: ready.set()))
    sys.exit(0 if started else 1)


class _Pool:
    def __init__(self, settings: Settings, port: int) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._environment = worker_environment(settings)
        self._host = settings.host
        self._port = port
        self.processes: list[tuple[BaseProcess, multiprocessing.synchronize.Event]] = []

    def start(self) -> tuple[BaseProcess, multiprocessing.synchronize.Event]:
        ready = self._context.Event()
        process = self._context.Process(
            target=_run_worker,
            args=(self._environment, self._host, self._port, ready),
            name="errdiscount-worker",
        )
        process.start()
        return process, ready

    def wait_ready(self, deadline: float) -> bool:
        """True once every worker listens; False when one exited or time ran out."""
        for process, ready in self.processes:
            while not ready.wait(0.05):
                if not process.is_alive() or time.monotonic() > deadline:
                    return False
        return True

    def stop(self) -> None:
        for process, _ in self.processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process, _ in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def serve_workers(settings: Settings, announce: Callable[[int], None]) -> None:
    """Run ``settings.workers`` processes until SIGTERM or SIGINT; ``announce(port)`` once up.

    Raises:
        WorkersFailed: the port cannot be bound, or a worker did not start.
    """
    try:
        holder = bind_port(settings.host, settings.port, reuse_port=True)
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        raise WorkersFailed(f"cannot listen on {where}: {exc.strerror}") from None
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    pool = _Pool(settings, holder.getsockname()[1])
    try:
        pool.processes = [pool.start() for _ in range(settings.workers)]
        if not pool.wait_ready(time.monotonic() + START_TIMEOUT_SECONDS):
            raise WorkersFailed("a worker could not start (see the log above)")
        announce(holder.getsockname()[1])
        while not stopping.wait(0.5):
            for index, (process, _) in enumerate(pool.processes):
                if not process.is_alive() and not stopping.is_set():
                    log.warning(
                        "worker %s exited with code %s; starting another", process.pid,
                        process.exitcode,
                    )  # fmt: skip
                    pool.processes[index] = pool.start()
    finally:
        pool.stop()
        holder.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
