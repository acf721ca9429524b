"""`make run`'s foreground supervisor: the projector and the API, stopped together.

Runs `python -m projector` and `python -m api` as children, prints where they answer,
and on Ctrl-C / SIGTERM (or when either child exits) sends SIGTERM to both and waits; one
still running STOP_TIMEOUT seconds later is killed. Only these two children are signalled,
through psutil, which refuses a pid that is no longer the child's.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

import psutil

from config import Settings, mask_url
from events.logs import exit_if_rejected

STOP_TIMEOUT = 20.0


def _stop_all(children: dict[str, psutil.Popen]) -> None:
    names = {child.pid: name for name, child in children.items() if child.poll() is None}
    running = [child for child in children.values() if child.pid in names]
    for child in running:
        child.terminate()
    _, alive = psutil.wait_procs(running, timeout=STOP_TIMEOUT)
    for child in alive:
        name = names[child.pid]
        print(f"[serve] {name} ignored SIGTERM; killing pid {child.pid}", file=sys.stderr)
        child.kill()
    psutil.wait_procs(alive)


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
        "projector": psutil.Popen([sys.executable, "-m", "projector"], env=os.environ),
        "api": psutil.Popen([sys.executable, "-m", "api"], env=os.environ),
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
