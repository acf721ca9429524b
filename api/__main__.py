"""`python -m api`: the API under gunicorn with the shipped config (api/gunicorn_conf.py).

Extra arguments go to gunicorn, e.g. `python -m api --workers 4`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CONFIG = Path(__file__).with_name("gunicorn_conf.py")


def main() -> None:
    """Replace this process with gunicorn's master, so SIGTERM reaches it directly."""
    # By file path, not `python:api.gunicorn_conf`: the master must not import Flask (and ssl)
    # before gevent patches the workers it forks.
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(CONFIG),
        *sys.argv[1:],
        "api.wsgi:app",
    ]
    os.execv(sys.executable, argv)


if __name__ == "__main__":
    main()
