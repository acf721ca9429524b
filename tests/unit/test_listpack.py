"""The listpack settings check: pure verdicts on what CONFIG GET answered."""

from __future__ import annotations

import pytest

from projector import keys, listpack


@pytest.mark.parametrize(
    ("config", "ok"),
    [
        ({"hash-max-listpack-entries": "512", "hash-max-listpack-value": "64"}, True),
        ({"hash-max-listpack-entries": "128", "hash-max-listpack-value": "64"}, False),
        ({"hash-max-listpack-entries": "512", "hash-max-listpack-value": "8"}, False),
        ({"hash-max-listpack-entries": "512"}, None),
        ({}, None),
        ({"hash-max-listpack-entries": "x", "hash-max-listpack-value": "64"}, None),
    ],
)
def test_verdicts(config: dict[str, str], ok: bool | None) -> None:
    result = listpack.check(config)
    assert result.ok is ok
    assert (result.warning() is not None) == (ok is False)


def test_the_need_follows_the_layout() -> None:
    assert listpack.NEEDED["hash-max-listpack-entries"] >= keys.SPLIT_AT
    assert listpack.NEEDED["hash-max-listpack-entries"] >= keys.DEDUP_SPLIT_AT
    warning = listpack.check({"hash-max-listpack-entries": 100, "hash-max-listpack-value": 64})
    assert "hash-max-listpack-entries 100" in (warning.warning() or "")
