"""A helper that counts the command batches a test sends to Redis (its round trips)."""

from __future__ import annotations

import pytest
import redis


def count_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per command batch sent to Redis (a pipeline is one), from now on, until the
    monkeypatch is undone; clear the list to count afresh."""
    sent: list[int] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: redis.connection.AbstractConnection, *args: object, **kw: object) -> None:
        sent.append(1)
        original(self, *args, **kw)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent
