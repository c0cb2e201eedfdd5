"""``--workers N`` on Linux: one SO_REUSEPORT socket per worker, supervised.

Real processes: the connections of one client opened together are spread over the
workers (with uvicorn's shared socket one worker took them all), a worker that dies is
replaced, SIGTERM stops every worker, and a parent killed outright takes its workers
with it.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import httpx
import pytest

from server_stub._workers import REUSE_PORT_BALANCES
from tests.support.server_support import ServerProcess
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REUSE_PORT_BALANCES, reason="SO_REUSEPORT balances on Linux only"),
]


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                stat = file.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and "spawn_main" in _cmdline(int(entry)):
            found.append(int(entry))
    return sorted(found)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def established(pid: int, port: int) -> int:
    """Connections to ``port`` that process ``pid`` holds open (from /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as file:
            for line in file.readlines()[1:]:
                parts = line.split()
                local_port = int(parts[1].rsplit(":", 1)[1], 16)
                if local_port == port and parts[3] == "01" and parts[9] in inodes:
                    count += 1
    return count


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def two_workers(server: ServerProcess, without: int | None = None) -> list[int]:
    """The server's two worker pids, once it has two (none of them ``without``)."""

    def found() -> list[int] | None:
        pids = children(server.process.pid)
        return pids if len(pids) == 2 and without not in pids else None

    result: list[int] = wait_until(found)
    return result


def test_connections_opened_together_reach_every_worker(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path}/w.db", tmp_path / "key.pem", "--workers", "2")
    try:
        port = int(server.url.rsplit(":", 1)[1])
        workers = two_workers(server)
        sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
        try:
            for sock in sockets:
                sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            for sock in sockets:
                assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            held = {pid: established(pid, port) for pid in workers}
            # 32 connections hashed over 2 sockets all on one: about 1 in 2**31.
            assert sum(held.values()) == 32 and all(held.values()), held
        finally:
            for sock in sockets:
                sock.close()
    finally:
        server.stop()


def test_a_dead_worker_is_replaced_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path}/w.db", tmp_path / "key.pem", "--workers", "2")
    try:
        first = two_workers(server)
        os.kill(first[0], signal.SIGKILL)
        now = two_workers(server, without=first[0])
        for _ in range(8):
            with httpx.Client(base_url=server.url) as http:  # a new connection each time
                assert http.get("/livez").status_code == 200
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
        assert not any(alive(pid) for pid in now)
    finally:
        server.stop()


def test_a_parent_killed_outright_takes_its_workers_with_it(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path}/w.db", tmp_path / "key.pem", "--workers", "2")
    try:
        workers = two_workers(server)
        server.kill()
        wait_until(lambda: not any(alive(pid) for pid in workers))
        port = int(server.url.rsplit(":", 1)[1])
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/livez", timeout=2)
    finally:
        server.stop()
