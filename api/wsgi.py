"""WSGI entry point for those who run gunicorn themselves: `gunicorn api.wsgi:app`."""

from api import create_app

app = create_app()
