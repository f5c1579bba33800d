"""Report on the current configuration, one line per concern.

  python -m server check [--app MODULE:NAME] [--timeout SECONDS]

Reads the SERVER_* environment (docs/settings.md) and the SocketIO options of
the application (default: wsgi:app), then reports: the production servers
installed, request threads and the connections the file-descriptor limit
allows, transports, the origin policy, TLS (SERVER_CERTFILE and
SERVER_KEYFILE: start-up checks and expiry) and whether the message queue
answers a TCP connect.  Each line is OK, WARN or FAIL, with a fix under
WARN and FAIL.  Exit status: 1 if any line is FAIL, else 0.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", default="wsgi:app", metavar="MODULE:NAME",
                        help="the WSGI application, as for gunicorn (default: wsgi:app)")
    parser.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS",
                        help="how long to wait for the message queue (default 2)")


def load_app(spec: str) -> Any:
    """Import ``module:name`` the way gunicorn does (current directory first)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"--app {spec!r} is not MODULE:NAME, e.g. wsgi:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no {attr!r}") from None


def app_options(spec: str) -> tuple[list[Any], dict[str, Any]]:
    """The app's SocketIO options (or the environment's, if it cannot load)."""
    from server import settings

    from .check_items import FAIL, OK, Line

    try:
        app = load_app(spec)
    except Exception as exc:  # noqa: BLE001 - any error importing the app is a FAIL line
        line = Line(FAIL, "app", f"cannot load {spec}: {type(exc).__name__}: {exc}",
                    "run from the directory holding the module, or pass --app MODULE:NAME")
        return [line], settings.resolve({}, scopes=("extension", "socketio"))
    socketio = getattr(app, "extensions", {}).get("socketio")
    if socketio is None:
        return [Line(FAIL, "app", f"{spec} has no SocketIO extension",
                     "pass the Flask app whose SocketIO(app) / init_app(app) ran")], {}
    return ([Line(OK, "app", f"{spec}: Flask app {app.name!r} with SocketIO")],
            dict(socketio.server_options))


def report(spec: str, timeout: float, environ: dict[str, str]) -> list[Any]:
    from server.errors import ConfigurationError

    from . import check_items as c

    def guarded(topic: str, check: Any, *args: Any) -> list[Any]:
        # a bad SERVER_* value fails its own line; the other checks still run
        try:
            return check(*args)
        except ConfigurationError as exc:
            return [c.Line(c.FAIL, topic, str(exc))]

    app_lines, options = app_options(spec)
    return [*c.servers(), *guarded("capacity", c.capacity, environ), *app_lines,
            *c.transports(options), *c.origins(options), *guarded("tls", c.tls, environ),
            *c.message_queue(options, timeout)]


def main(args: argparse.Namespace) -> int:
    from .check_items import FAIL

    lines = report(args.app, args.timeout, dict(os.environ))
    for line in lines:
        print(line.render())
    failed = sum(line.status == FAIL for line in lines)
    print(f"{len(lines)} checks, {failed} failed")
    return 1 if failed else 0
