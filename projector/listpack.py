"""Whether Redis keeps our hashes compact: its `hash-max-listpack-*` settings against what the
key layout needs (projector/keys.py). Correctness never depends on them; memory does: a hash
over the limits is stored as a hashtable, several times larger. The check is pure; `read`
asks Redis (CONFIG GET), and says "unknown" where an ACL or a managed Redis refuses it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from projector import keys

# The least values under which every hash of the layout stays a listpack: a count-tree leaf
# or a dedup bucket holds at most SPLIT_AT / DEDUP_SPLIT_AT fields once a write is done, an
# interior node at most 61; fields and values are at most 12 bytes.
NEEDED: dict[str, int] = {
    "hash-max-listpack-entries": max(keys.SPLIT_AT, keys.DEDUP_SPLIT_AT, 61),
    "hash-max-listpack-value": 16,
}


@dataclass(frozen=True)
class ListpackCheck:
    """The settings Redis reported (None: not readable), what the layout needs, the verdict."""

    config: Mapping[str, int | None]
    needed: Mapping[str, int]

    @property
    def ok(self) -> bool | None:
        """True when every setting meets the need, False when one is below, None unknown."""
        if any(self.config.get(name) is None for name in self.needed):
            return None
        return all((self.config[name] or 0) >= least for name, least in self.needed.items())

    def warning(self) -> str | None:
        """One line for the log when the settings are below what the layout needs."""
        if self.ok is not False:
            return None
        low = ", ".join(
            f"{name} {self.config[name]} < {least}"
            for name, least in self.needed.items()
            if (self.config[name] or 0) < least
        )
        return (
            f"Redis {low}: counts stay exact, but busy orgs' hashes take several times more memory"
        )


def check(config: Mapping[str, Any]) -> ListpackCheck:
    """The verdict on CONFIG GET's answer (names -> values as text)."""
    found: dict[str, int | None] = {}
    for name in NEEDED:
        value = config.get(name)
        try:
            found[name] = None if value is None else int(value)
        except (TypeError, ValueError):
            found[name] = None
    return ListpackCheck(found, dict(NEEDED))


def read(redis_client: Any) -> ListpackCheck:
    """Ask Redis (on a cluster, the node redis-py picks: nodes share their configuration)."""
    try:
        config = redis_client.config_get("hash-max-listpack-*")
    except ResponseError:  # NOPERM, or a managed Redis without CONFIG
        config = {}
    if isinstance(config, Mapping) and config and isinstance(next(iter(config.values())), dict):
        config = next(iter(config.values()))  # a cluster client's per-node answer
    return check({(k.decode() if isinstance(k, bytes) else k): v for k, v in dict(config).items()})
