"""Structured logging for both processes: one JSON object per line on stderr."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

from config import ConfigError

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Exit status of a process whose configuration was rejected (settings or a server's refusal).
EXIT_REJECTED = 2


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; `extra={...}` fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # kafka-python is chatty at INFO about every connection and rebalance step.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))


@contextlib.contextmanager
def exit_if_rejected(logger: logging.Logger, code: int = EXIT_REJECTED) -> Iterator[None]:
    """Turn a ConfigError (bad settings, a server's refusal) into one log line and exit `code`."""
    try:
        yield
    except ConfigError as exc:
        if not logging.getLogger().handlers:
            configure_logging()
        logger.error("configuration rejected: %s", exc, extra={"error": type(exc).__name__})
        raise SystemExit(code) from None
