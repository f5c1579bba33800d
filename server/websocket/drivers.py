"""The driver table: WSGI server name -> module, imported only when asked for."""
from __future__ import annotations

import importlib
import types
from collections.abc import Mapping
from typing import Any

#: name -> module implementing the driver interface, in the order tried.
DRIVERS: Mapping[str, str] = types.MappingProxyType({
    "gunicorn": "server.websocket.gunicorn",
    "uwsgi": "server.websocket.uwsgi",
    "waitress": "server.websocket.waitress",
    "werkzeug": "server.websocket.werkzeug",
})

#: environ key where a driver explains why it could not detach a connection.
REFUSAL_KEY = "server.websocket.refusal"
#: environ key of a callable that lets the next WebSocket handshake in
#: (server.engine's handshake gate); a WebSocket served in its request thread
#: calls it before serving, so it does not hold the gate for its whole life
GATE_KEY = "server.handshake_gate"


def load_driver(name: str) -> Any:
    """Import the driver module called ``name`` (a key of :data:`DRIVERS`)."""
    try:
        module_name = DRIVERS[name]
    except KeyError:
        raise ValueError(f"unknown WebSocket driver {name!r}; "
                         f"known drivers: {', '.join(DRIVERS)}") from None
    return importlib.import_module(module_name)


def find_driver(environ: Mapping[str, Any]) -> Any | None:
    """The driver module for the WSGI server that produced ``environ``.

    ``None`` when no driver recognises the server.  A driver that cannot
    be imported because a module it needs is missing is skipped: the server
    it drives is then not the one running (``uwsgi``, for one, is importable
    only inside a uWSGI process).
    """
    for name in DRIVERS:
        try:
            driver = load_driver(name)
        except ModuleNotFoundError:
            continue
        if driver.matches(environ):
            return driver
    return None
