"""Small network probes: a TLS handshake, and whether a port speaks plaintext Kafka or Redis.

They let the start-up checks (events/preflight.py) name a wrong protocol instead of guessing
from a closed connection. Each makes one short connection and sends nothing secret.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from collections.abc import Callable

PROBE_SECONDS = 3.0


def tls_context(
    cafile: str | None,
    certfile: str | None = None,
    keyfile: str | None = None,
    password: str | None = None,
) -> ssl.SSLContext:
    """A verifying client context, as kafka-python and redis-py build theirs."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cafile:
        context.load_verify_locations(cafile)
    else:
        context.load_default_certs()
    if certfile:
        context.load_cert_chain(certfile, keyfile, password)
    return context


def handshake(address: tuple[str, int], context: ssl.SSLContext, listen: float = 0.0) -> None:
    """One TLS handshake with `address`; raises the ssl/socket error it met.

    With `listen`, waits that long for an alert after the handshake: under TLS 1.3 a server
    that wants a client certificate says so only then.
    """
    with (
        socket.create_connection(address, timeout=PROBE_SECONDS) as raw,
        context.wrap_socket(raw, server_hostname=address[0]) as tls,
    ):
        if listen:
            tls.settimeout(listen)
            with contextlib.suppress(TimeoutError):
                tls.recv(1)


def speaks_tls(address: tuple[str, int]) -> bool:
    """Whether `address` completes a TLS handshake (certificate not checked)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        handshake(address, context)
    except (OSError, ssl.SSLError):
        return False
    return True


def _answers(address: tuple[str, int], request: bytes, is_reply: Callable[[bytes], bool]) -> bool:
    try:
        with socket.create_connection(address, timeout=PROBE_SECONDS) as sock:
            sock.sendall(request)
            reply = sock.recv(64)
    except OSError:
        return False
    return is_reply(reply)


def speaks_plain_kafka(address: tuple[str, int]) -> bool:
    """Whether `address` answers a plaintext Kafka ApiVersions request (v0)."""
    correlation = 0x50524331
    client = b"prc-preflight"
    body = struct.pack(">hhih", 18, 0, correlation, len(client)) + client
    request = struct.pack(">i", len(body)) + body
    return _answers(
        address, request, lambda r: len(r) >= 8 and struct.unpack(">i", r[4:8])[0] == correlation
    )


def speaks_plain_redis(address: tuple[str, int]) -> bool:
    """Whether `address` answers a plaintext Redis PING (a refusal to unauthenticated counts)."""
    return _answers(address, b"PING\r\n", lambda r: r[:1] in (b"+", b"-"))


def ssl_reason(exc: BaseException) -> str:
    """The short reason of an ssl error (`verify_message`, `reason`), else its text."""
    for name in ("verify_message", "reason", "strerror"):
        value = getattr(exc, name, None)
        if value:
            return str(value)
    return str(exc) or type(exc).__name__


def ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
