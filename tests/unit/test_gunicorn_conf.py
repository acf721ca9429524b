"""The worker hook that keeps full garbage collections short (api/gunicorn_conf.py)."""

from __future__ import annotations

import subprocess
import sys

# In a fresh interpreter: loading the config file sets process-wide state (the metrics folder).
_PROBE = """
import gc
import api.gunicorn_conf as conf
import api

api.create_app()
before = gc.get_freeze_count()

class Worker:
    alive = False

conf.post_worker_init(Worker())
print(before, gc.get_freeze_count())
"""


def test_post_worker_init_freezes_what_start_up_allocated() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    before, after = map(int, done.stdout.split())
    assert before == 0
    # The loaded app is tens of thousands of objects; all of them leave the collector's view.
    assert after > 20_000
