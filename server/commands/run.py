"""Serve a Flask app that uses SocketIO (the demo app, ``wsgi:app``, by default).

gunicorn (gthread, one process) where installed, else waitress; ``--server
werkzeug`` for the development server; ``--server uwsgi`` runs uWSGI with
./uwsgi.ini.  The options also read SERVER_BIND / SERVER_THREADS (see
docs/settings.md); flags given here win.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys

SERVER_CHOICES = ("gunicorn", "uwsgi", "waitress", "werkzeug")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("app", nargs="?", default="wsgi:app", metavar="APP",
                        help="MODULE:ATTRIBUTE of the Flask app (default: wsgi:app, the demo)")
    parser.add_argument("--server", choices=SERVER_CHOICES, default=None,
                        help="WSGI server (default: gunicorn if installed, else waitress)")
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default 5000)")
    parser.add_argument("--threads", type=int, default=None,
                        help="server threads for HTTP requests (default: SERVER_THREADS or 100)")
    parser.add_argument("--debug", action="store_true",
                        help="debug mode on the Werkzeug development server, with the reloader")


def _host_port(args: argparse.Namespace) -> tuple[str, int]:
    from server.settings import server_value

    bind_host, _, bind_port = str(server_value("bind")).rpartition(":")
    host = args.host or bind_host or "127.0.0.1"
    port = args.port if args.port is not None else int(bind_port or 5000)
    return host, port


def _run_uwsgi(args: argparse.Namespace) -> int:
    ini = os.path.abspath("uwsgi.ini")
    uwsgi = shutil.which("uwsgi")
    if uwsgi is None or not os.path.exists(ini):
        missing = "the uwsgi program (pip install 'server[uwsgi]')" if uwsgi is None \
            else f"{ini} (run from the directory holding the shipped uwsgi.ini)"
        print(f"python -m server run --server uwsgi needs {missing}", file=sys.stderr)
        return 2
    host, port = _host_port(args)
    os.environ["SERVER_BIND"] = f"{host}:{port}"
    if args.threads:
        os.environ["SERVER_THREADS"] = str(args.threads)
    os.execv(uwsgi, [uwsgi, "--ini", ini, "--module", args.app])
    return 0  # pragma: no cover - execv does not return


def main(args: argparse.Namespace) -> int:
    if args.server == "uwsgi":
        return _run_uwsgi(args)
    from server.errors import ConfigurationError
    from server.runner_hooks import find_socketio, load_spec

    sys.path.insert(0, os.getcwd())  # like gunicorn/uwsgi: APP is found from here
    try:
        app = load_spec(args.app)
    except (ImportError, AttributeError) as exc:
        print(f"cannot load the app {args.app!r}: {exc}", file=sys.stderr)
        return 2
    socketio = find_socketio(app)
    if socketio is None:
        print(f"{args.app!r} has no SocketIO (app.extensions['socketio'] is missing); "
              "create one with SocketIO(app)", file=sys.stderr)
        return 2
    host, port = _host_port(args)
    options = {"server": args.server, "debug": args.debug}
    if args.threads:
        options["threads"] = args.threads
    try:
        socketio.run(app, host=host, port=port, **options)
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0
