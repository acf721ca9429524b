"""The environment's grammar: how a value is read, checked and kept secret.

config.service (the service's processes) and config.stack (the local stack, the test
harness and the benches) read the environment through these and through nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


class ConfigError(ValueError):
    """A configuration value is missing or malformed; raised at start-up."""


def parse_int(name: str, raw: str, minimum: int = 0) -> int:
    """`raw`, the value of `name`, as an integer >= `minimum`."""
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def parse_bool(name: str, raw: str) -> bool:
    """`raw`, the value of `name`: true/1/yes or false/0/no, any case."""
    if raw.lower() in TRUE + FALSE:
        return raw.lower() in TRUE
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def parse_list(raw: str | None) -> tuple[str, ...]:
    """A comma-separated value as its non-empty, stripped parts."""
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


def mask_url(url: str) -> str:
    """`url` with its password (if any) replaced by ***, for logs and messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # e.g. a bad port: say nothing that could hold a secret
        return "<unparsable URL>"
    if password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def read_secret_file(name: str, path: str) -> str:
    """The content of `<name>_FILE`'s file, one trailing newline dropped (as `echo` leaves)."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{name}_FILE: cannot read {path!r} ({reason})") from None
    value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise ConfigError(f"{name}_FILE: {path!r} is empty")
    return value


def with_secret_files(env: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """`env` with every `<NAME>_FILE` of `names` replaced by `<NAME>` (the file's content)."""
    merged = dict(env)
    for name in names:
        path = env.get(f"{name}_FILE")
        if not path:
            continue
        if env.get(name):
            raise ConfigError(f"set {name} or {name}_FILE, not both")
        merged[name] = read_secret_file(name, path)
    return merged


def readable_file(name: str, path: str | None) -> None:
    """Raise unless `path` (the value of `name`) is unset or a readable file."""
    if path is not None and not (os.path.isfile(path) and os.access(path, os.R_OK)):
        raise ConfigError(f"{name}: no readable file at {path!r}")
