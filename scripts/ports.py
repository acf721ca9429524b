"""Loopback ports: whether ours are free, and who holds one that is not.

A port already taken is reported (with the pid and name of the process listening on it, when
it can be seen), never fought over: nothing here signals any process.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable

import psutil

from scripts.processes import StackError, log

HOST = "127.0.0.1"


def port_open(port: int) -> bool:
    """Whether something listens on loopback `port`."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _bindable(port: int) -> bool:
    """Whether a server could listen on loopback `port` now: no listener on it, and no
    connection's local end either (a port of the ephemeral range may be one)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as redis-server does
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def ports_taken(ports: Iterable[int], wait: float = 65.0) -> list[int]:
    """Which of `ports` a server of ours cannot listen on: a listener's are taken at once; one
    held by a connection's local end is taken if it is still held after `wait` seconds (the
    default outlasts Linux's 60 s TIME_WAIT of a closed connection)."""
    held = [port for port in ports if not _bindable(port)]
    if held and not any(port_open(port) for port in held) and wait > 0:
        log(f"port(s) {', '.join(map(str, held))} held by a connection; waiting up to {wait:.0f}s")
    deadline = time.monotonic() + wait
    while held and not any(port_open(port) for port in held) and time.monotonic() < deadline:
        time.sleep(0.5)
        held = [port for port in held if not _bindable(port)]
    return held


def holder(port: int) -> str | None:
    """Who listens on `port`, as "pid N (name)", or None when no listener of it can be seen
    (a connection's local end, or another user's process without the rights to see it)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    listening = [conn for conn in connections if conn.status == psutil.CONN_LISTEN]
    pids = sorted({c.pid for c in listening if c.laddr and c.laddr.port == port and c.pid})
    if not pids:
        return None
    named = []
    for pid in pids:
        try:
            named.append(f"pid {pid} ({psutil.Process(pid).name()})")
        except psutil.Error:
            named.append(f"pid {pid}")
    return ", ".join(named)


def held_by(port: int) -> str:
    """' (held by pid N (name))' for a message about `port`, or '' when that is not known."""
    who = holder(port)
    return f" (held by {who})" if who else ""


def check_ports(*ports: int) -> None:
    """Raise StackError naming the ports (and their holders) that a server of ours cannot
    listen on now."""
    taken = ports_taken(ports)
    if taken:
        listed = ", ".join(map(str, taken))
        holders = "; ".join(f"{port} held by {who}" for port in taken if (who := holder(port)))
        detail = f" ({holders})" if holders else ""
        raise StackError(f"port(s) {listed} taken by something we did not start{detail}")
