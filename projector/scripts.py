"""Every Lua script of the service, built from `projector/lua/` in one place.

A script is its file, composed with the libraries it calls and headed by the key layout's
constants (`projector.keys.lua_constants`), so the Lua computes the same fields Python names
and cannot drift from them. Each declares every key it touches, all in one hash slot (Redis
Cluster), except `COUNT_UPSERT`, the single-Redis POST in one round trip, which spans the
org's slot and the shared one and so is only used without a cluster.
"""

from __future__ import annotations

from hashlib import sha1
from importlib import resources

from projector import keys


def _lua_value(value: object) -> str:
    if isinstance(value, list | tuple):
        return "{" + ", ".join(_lua_value(v) for v in value) + "}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isprintable():
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no Lua literal for {value!r}")


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("lua", name).read_text("utf-8")


def constants_header() -> str:
    """`local NAME = value` for every layout constant the scripts share."""
    return "".join(f"local {k} = {_lua_value(v)}\n" for k, v in keys.lua_constants().items())


class Script:
    """A composed Lua script and its SHA1 (for EVALSHA)."""

    def __init__(self, name: str, *libraries: str) -> None:
        body = _read(name)
        shebang = ""
        if body.startswith("#!"):
            shebang, _, body = body.partition("\n")
            shebang += "\n"
        parts = [shebang, constants_header(), *(_read(lib) for lib in libraries), body]
        self.name = name
        self.source = "".join(parts)
        self.sha = sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    def __repr__(self) -> str:
        return f"Script({self.name!r})"


APPLY = Script("apply.lua")
COUNT = Script("count.lua", "count_lib.lua")
ADVANCE = Script("advance.lua")
CAUGHT_UP = Script("caught_up.lua")
COUNT_UPSERT = Script("count_upsert.lua", "count_lib.lua", "snapshots_lib.lua")
UPSERT_COUNTED = Script("upsert_counted.lua", "snapshots_lib.lua")
REPLACE = Script("replace.lua", "snapshots_lib.lua")
DELETE = Script("delete.lua", "snapshots_lib.lua")
PAGE = Script("page.lua")
GENERATION = Script("generation.lua")
SERIES = Script("series.lua", "count_lib.lua")
ALL = (
    APPLY,
    COUNT,
    ADVANCE,
    CAUGHT_UP,
    COUNT_UPSERT,
    UPSERT_COUNTED,
    REPLACE,
    DELETE,
    PAGE,
    GENERATION,
    SERIES,
)
