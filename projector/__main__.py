"""`python -m projector`: run one projector until SIGTERM/SIGINT, then exit cleanly.

`python -m projector rebuild [--abort | --status]`: build a new generation of the projection
from the topic and switch to it (`projector.rebuild`; the README's operators' section).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from redis.exceptions import RedisError

from config import Settings
from events.logs import configure_logging, exit_if_rejected
from events.preflight import check_services
from events.redis_client import UNAVAILABLE, connect
from projector import layout, listpack, metrics
from projector.consumer import Projector
from projector.rebuild import SWITCH_LAG, Options, Rebuilder
from projector.registry import GenerationRegistry
from projector.store import CounterStore

log = logging.getLogger("projector")


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line: nothing (run a projector) or `rebuild` with its options."""
    parser = argparse.ArgumentParser(prog="python -m projector", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    rebuild = commands.add_parser(
        "rebuild",
        help="rebuild the projection from the topic into a new generation, then switch to it",
    )
    what = rebuild.add_mutually_exclusive_group()
    what.add_argument("--abort", action="store_true", help="drop an unfinished rebuild")
    what.add_argument("--status", action="store_true", help="print the generations and exit")
    rebuild.add_argument(
        "--switch-lag",
        type=int,
        default=SWITCH_LAG,
        metavar="RECORDS",
        help=f"move live projectors once this close behind them (default {SWITCH_LAG:,})",
    )
    rebuild.add_argument(
        "--no-switch",
        action="store_true",
        help="build and keep up, but do not switch (run again without it to switch)",
    )
    rebuild.add_argument(
        "--max-rate",
        type=float,
        default=0.0,
        metavar="EVENTS_PER_S",
        help="read at most this many records a second (default: as fast as it goes)",
    )
    rebuild.add_argument(
        "--progress-every",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds between progress lines (default 5)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the projector (the batch in hand is finished before exit), or a rebuild.

    Exits 2 at once, with one log line saying why, when the settings are invalid, Kafka or
    Redis refuses them (password, certificate, protocol), or Redis holds a projection in a key
    layout this version does not read (`projector.layout`)."""
    args = parse(sys.argv[1:] if argv is None else argv)
    with exit_if_rejected(log):
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        log.info("settings", extra={"settings": settings.of(args.command or "projector")})
        check_services(settings, with_kafka=True, with_redis=True)
    if args.command == "rebuild":
        return rebuild(settings, args)
    with exit_if_rejected(log):
        require_layout(settings)
    projector = Projector(settings)
    signal.signal(signal.SIGTERM, lambda *_: projector.request_stop())
    signal.signal(signal.SIGINT, lambda *_: projector.request_stop())
    # After the handlers: a SIGTERM while Redis is asked still ends the process cleanly.
    report_listpack(settings)
    metrics.serve(settings.projector_metrics_port)
    log.info("metrics served", extra={"port": settings.projector_metrics_port})
    with exit_if_rejected(log):  # a move to a generation of another layout (`_move_to`)
        projector.run()
    return 0


def require_layout(settings: Settings) -> None:
    """Refuse (LayoutMismatch) to project into a generation of another key layout; claim an
    empty unmarked one. Before joining the group: a refused projector takes no partitions."""
    prefix = settings.redis_key_prefix
    client = connect(settings)
    try:
        target = GenerationRegistry(client, prefix, settings.dedup_window_seconds).read().target
        store = CounterStore(
            client,
            prefix,
            settings.record_events_topic,
            target.dedup_window_seconds,
            generation=target.number,
        )
        layout.require(client, prefix, store)
    except UNAVAILABLE as exc:
        # A projector may start while Redis is away; it checks again before its first batch
        # is handed on (Projector._move_to), and refuses then.
        log.warning("layout not checked yet: redis unreachable", extra={"error": str(exc)})
    finally:
        client.close()


def report_listpack(settings: Settings) -> None:
    """Log whether Redis keeps the layout's hashes compact (a warning when it does not)."""
    try:
        client = connect(settings)
        try:
            result = listpack.read(client)
        finally:
            client.close()
    except RedisError as exc:  # the poll loop retries Redis; this check is advice only
        log.warning("listpack settings not read", extra={"error": str(exc)})
        return
    config = dict(result.config)
    warning = result.warning()
    if warning is not None:
        log.warning(warning, extra={"listpack": config, "needed": dict(result.needed)})
    elif result.ok is None:
        log.warning("listpack settings unknown (CONFIG GET refused)", extra={"listpack": config})
    else:
        log.info("listpack settings fit the layout", extra={"listpack": config})


def rebuild(settings: Settings, args: argparse.Namespace) -> int:
    """`python -m projector rebuild`: its exit code (0 done, 2 refused, 3 stopped early)."""
    options = Options(
        args.switch_lag, args.progress_every, switch=not args.no_switch, max_rate=args.max_rate
    )
    rebuilder = Rebuilder(settings, options, sys.stdout)
    if args.status:
        return rebuilder.status()
    signal.signal(signal.SIGTERM, lambda *_: rebuilder.stop())
    signal.signal(signal.SIGINT, lambda *_: rebuilder.stop())
    if args.abort:
        return rebuilder.abort()
    metrics.serve(settings.rebuild_metrics_port)
    return rebuilder.run()


if __name__ == "__main__":
    sys.exit(main())
