"""The gunicorn target: `gunicorn -c gunicorn.conf.py app:app`."""

from dashboard import create_app

app = create_app()
