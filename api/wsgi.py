"""WSGI entry point for those who run gunicorn themselves: `gunicorn api.wsgi:app`.

Settings that are invalid, or that Redis refuses (password, ACL, TLS), stop the server: the
worker exits 4, gunicorn's "App failed to load", on which the master halts.
"""

import logging

from api import check_connections, create_app
from events.logs import exit_if_rejected

with exit_if_rejected(logging.getLogger("api"), code=4):
    app = create_app()
    check_connections(app)
