"""`python -m projector`: run one projector until SIGTERM/SIGINT, then exit cleanly."""

from __future__ import annotations

import logging
import signal
import sys

from events.logs import configure_logging, exit_if_rejected
from events.preflight import check_services
from events.settings import Settings
from projector import metrics
from projector.consumer import Projector

log = logging.getLogger("projector")


def main() -> int:
    """Start the projector; the batch in hand is finished before exit.

    Exits 2 at once, with one log line saying why, when the settings are invalid or Kafka or
    Redis refuses them (password, certificate, protocol)."""
    with exit_if_rejected(log):
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        check_services(settings, with_kafka=True, with_redis=True)
    projector = Projector(settings)
    signal.signal(signal.SIGTERM, lambda *_: projector.request_stop())
    signal.signal(signal.SIGINT, lambda *_: projector.request_stop())
    metrics.serve(settings.projector_metrics_port)
    log.info("metrics served", extra={"port": settings.projector_metrics_port})
    projector.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
