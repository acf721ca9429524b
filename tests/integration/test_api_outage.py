"""Redis unreachable, hung, then back: 503 + Retry-After within seconds, then normal service."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlparse

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from api.middleware import BASE_PATH
from config import Settings
from scripts.harness import free_port

BODY = {
    "org_id": "org-bufdir-42",
    "range": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-31T23:59:59Z"},
}
QUICK = 5.0  # seconds: socket timeouts are 2 s


class Relay:
    """A TCP relay in front of Redis that the test can cut and restore on the same port."""

    def __init__(self, target: tuple[str, int], port: int) -> None:
        self.target, self.port = target, port
        self.listener: socket.socket | None = None
        self.conns: list[socket.socket] = []

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self.listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would not.
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self.conns.clear()


@pytest.fixture
def relay(settings: Settings) -> Iterator[Relay]:
    url = urlparse(settings.redis_url)
    relay = Relay((url.hostname or "127.0.0.1", url.port or 6379), free_port())
    yield relay
    relay.cut()


def app_via(settings: Settings, port: int) -> Flask:
    return create_app(replace(settings, redis_url=f"redis://127.0.0.1:{port}/0"))


def assert_unavailable(client: FlaskClient, method: str, path: str, **kwargs: object) -> None:
    started = time.monotonic()
    response = client.open(path, method=method, **kwargs)
    assert time.monotonic() - started < QUICK
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    assert response.json["status"] == 503


REQUESTS = [
    ("POST", BASE_PATH, {"json": BODY}),
    ("GET", BASE_PATH, {}),
    ("GET", f"{BASE_PATH}/count-snapshot-{'0' * 32}", {}),
    ("PUT", f"{BASE_PATH}/count-snapshot-{'0' * 32}", {"json": {"range": BODY["range"]}}),
    ("DELETE", f"{BASE_PATH}/count-snapshot-{'0' * 32}", {}),
    ("GET", "/readyz", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), REQUESTS)
def test_closed_port_is_503(settings: Settings, method: str, path: str, kwargs: dict) -> None:
    client = create_app(replace(settings, redis_url="redis://127.0.0.1:1/0")).test_client()
    assert_unavailable(client, method, path, **kwargs)


def test_hung_redis_is_503_within_the_socket_timeout(settings: Settings) -> None:
    """A Redis that accepts connections and never answers."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen()
        client = app_via(settings, hole.getsockname()[1]).test_client()
        assert_unavailable(client, "POST", BASE_PATH, json=BODY)
        assert_unavailable(client, "GET", "/readyz")


@pytest.mark.single_redis
def test_recovers_by_itself_when_redis_comes_back(settings: Settings, relay: Relay) -> None:
    app = app_via(settings, relay.port)
    client = app.test_client()
    assert_unavailable(client, "POST", BASE_PATH, json=BODY)  # nothing listens yet

    relay.start()
    created = client.post(BASE_PATH, json=BODY)
    assert created.status_code == 201
    assert client.get("/readyz").status_code == 200

    relay.cut()  # pooled connections die mid-life, and new ones are refused
    assert_unavailable(client, "GET", created.headers["Location"])
    assert_unavailable(client, "GET", "/readyz")

    relay.start()
    assert client.get(created.headers["Location"]).status_code == 200
    assert client.post(BASE_PATH, json=BODY).status_code == 200
    assert client.get("/readyz").status_code == 200
    app.extensions["period-record-counts"].redis.close()
