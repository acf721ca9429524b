"""A minimal keep-alive HTTP/1.1 client: one connection, JSON POSTs and GETs, cheap on CPU, so
the benches time the server rather than the client. `sockets` may be gevent.socket."""

from __future__ import annotations

import socket
from typing import Any


class HttpClient:
    """A minimal keep-alive HTTP/1.1 client (one connection; JSON POSTs), cheap on CPU."""

    def __init__(self, port: int, sockets: Any = socket) -> None:
        self._port, self._sockets = port, sockets
        self._sock: Any = None
        self._buf = b""

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body); reconnects once when the server closed an idle connection."""
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        return self._send(request)

    def get(self, path: str) -> tuple[int, bytes]:
        """(status, body) of a GET (path with its query string)."""
        return self._send(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())

    def _send(self, request: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            if self._sock is None:
                self._sock = self._sockets.create_connection(("127.0.0.1", self._port), 10)
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self._sock.sendall(request)
                return self._response()
            except (ConnectionError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _recv(self, buf: bytes) -> bytes:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return buf + chunk

    def _response(self) -> tuple[int, bytes]:
        buf = self._buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf = self._recv(buf)
        lines = buf[:end].decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
        }
        need = end + 4 + int(headers["content-length"])  # our API never sends chunked bodies
        while len(buf) < need:
            buf = self._recv(buf)
        self._buf = buf[need:]
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(lines[0].split(" ", 2)[1]), buf[end + 4 : need]

    def close(self) -> None:
        """Close the connection (the next POST opens a new one)."""
        if self._sock is not None:
            self._sock.close()
        self._sock, self._buf = None, b""
