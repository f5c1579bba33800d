"""WebSocket hand-off: serve each WebSocket on threads of our own.

In threading mode python-engineio serves a WebSocket inside the WSGI
server's request thread for the connection's whole life, so a gunicorn
worker with ``--threads 100`` stops answering anything at the 101st
WebSocket.  Here the request thread only does the handshake: the driver for
the running WSGI server *detaches* the connection (the server never touches
it again) and the request thread returns at once.  The connection is then
served by the server's :class:`~server.websocket.reactor.Reactor`, one
thread for every WebSocket (:class:`EventedWebSocket`, the default), or by
a daemon thread of its own (:class:`HandoffWebSocket`,
``websocket_io='threads'``).

Drivers are small modules behind one interface, chosen from :data:`DRIVERS`
and imported only when asked for, so a missing uWSGI or waitress costs
nothing::

    NAME: str
    def matches(environ) -> bool
    def detach(environ) -> socket.socket | None
    def release(environ, start_response) -> iterable

Optional, used by the fallback path when ``detach`` returns ``None``::

    def borrow(environ) -> socket.socket | None   # the server's own socket,
                                                  # served in the request thread

A driver that refuses a hand-off may put its reason, as text, in
``environ[REFUSAL_KEY]``; the hand-off logs it once per server.
"""
from __future__ import annotations

from .drivers import DRIVERS, REFUSAL_KEY, find_driver, load_driver
from .evented import EventedWebSocket
from .handoff import HandoffWebSocket
from .reactor import Reactor
from .registry import WebSocketRegistry

__all__ = ["DRIVERS", "REFUSAL_KEY", "EventedWebSocket", "HandoffWebSocket", "Reactor",
           "WebSocketRegistry", "find_driver", "load_driver"]
