"""`make run`'s foreground supervisor: the projector and the API, stopped together.

Runs `python -m projector` and `python -m api` as children, prints where they answer,
and on Ctrl-C / SIGTERM (or when either child exits) sends SIGTERM to both and waits.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

from config import Settings, mask_url
from events.logs import exit_if_rejected

STOP_TIMEOUT = 20.0


def _stop_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"[serve] {name} ignored SIGTERM; killing pid {child.pid}", file=sys.stderr)
            child.kill()
            child.wait()


def main() -> int:
    """Start both processes and supervise them until told to stop."""
    with exit_if_rejected(logging.getLogger("serve")):
        settings = Settings.from_env()
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    children = {
        "projector": subprocess.Popen([sys.executable, "-m", "projector"], env=os.environ),
        "api": subprocess.Popen([sys.executable, "-m", "api"], env=os.environ),
    }
    base = f"http://127.0.0.1:{settings.port}"
    print(
        f"\n  API        {base}/api/v1/period-record-counts\n"
        f"  Live page  {base}/\n"
        f"  OpenAPI    {base}/api/v1/openapi.json\n"
        f"  Health     {base}/healthz  {base}/readyz  {base}/metrics\n"
        f"  Projector  metrics on http://127.0.0.1:{settings.projector_metrics_port}/metrics\n"
        f"  Kafka      {settings.kafka_bootstrap_servers}   Redis {mask_url(settings.redis_url)}\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"[serve] {name} exited with {child.returncode}", file=sys.stderr)
                exit_code = child.returncode or 1
                stopping = True
        time.sleep(0.2)
    _stop_all(children)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
