"""WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``, ``uwsgi --ini uwsgi.ini``.

Serves the demo application; point your server at your own module instead
(``myapp:app``), or replace this file in your deployment.
"""
from server.demo import create_app

app = create_app()
