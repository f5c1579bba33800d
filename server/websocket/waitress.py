# design:
#   detach and release run in a waitress task thread.  waitress's main loop
#   thread owns the channel (its asyncore map entry, reads, flushes, close);
#   we never remove, close or flag it from here.  While our request runs
#   the main loop neither reads the channel (with channel_request_lookahead
#   0 a channel with a request in progress is not readable) nor writes it
#   (nothing is buffered).  We take channel.requests_lock, the lock the main
#   loop holds while parsing, only to be sure it has finished with the data
#   it read, then swap a stand-in under its descriptor (takeover.take_over):
#   from then on the connection is reachable through our descriptor alone.
#   Lock order: requests_lock only; nothing blocks while holding it.
"""WebSocket hand-off driver for waitress.

Verified against waitress 3.0.2 (``waitress/task.py``, ``channel.py``,
``wasyncore.py``):

* waitress exposes no socket in ``environ``; ``environ
  ['waitress.client_disconnected']`` is a bound method of the connection's
  ``HTTPChannel``, whose ``socket`` is the connection (non-blocking; our
  duplicate is made blocking).
* After the app returns, the task writes the response headers into the
  channel's buffer and, the response having no length, marks the channel
  to close when flushed.  The main loop flushes to the stand-in, gets EPIPE,
  which wasyncore treats as a vanished client (``dispatcher.send``: close,
  no log), and closes the stand-in.  waitress never calls shutdown().
* The task thread is free as soon as the app returns.

Refused (``detach`` returns None, the reason goes to the log once):

* ``channel_request_lookahead`` above 0: waitress then keeps reading the
  connection while the app runs and would eat the WebSocket's first frames.
* bytes already read past the upgrade request (a client that did not wait
  for the 101): they are in waitress's parser, lost to us.
* a TLS socket (waitress has no TLS of its own; a subclass might).
"""
from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .drivers import REFUSAL_KEY
from .takeover import take_over

NAME = "waitress"

log = logging.getLogger("server.websocket")


def matches(environ: Mapping[str, Any]) -> bool:
    return "waitress.client_disconnected" in environ


def _channel(environ: Mapping[str, Any]) -> Any | None:
    from waitress.channel import HTTPChannel  # present: waitress is serving us

    channel = getattr(environ.get("waitress.client_disconnected"), "__self__", None)
    return channel if isinstance(channel, HTTPChannel) else None


def _refuse(environ: dict[str, Any], reason: str) -> None:
    environ[REFUSAL_KEY] = reason
    log.debug("waitress: WebSocket not handed off: %s", reason)


def detach(environ: dict[str, Any]) -> socket.socket | None:
    channel = _channel(environ)
    if channel is None:
        _refuse(environ, "this waitress does not expose its HTTP channel in "
                         "environ['waitress.client_disconnected']; use waitress 3.0")
        return None
    lookahead = channel.adj.channel_request_lookahead
    if lookahead != 0:
        _refuse(environ, f"waitress channel_request_lookahead={lookahead} lets waitress "
                         "read the connection while the app runs, so a WebSocket cannot "
                         "be handed off; set channel_request_lookahead=0 (the default)")
        return None
    if channel.socket is None:
        _refuse(environ, "waitress has already closed this connection")
        return None
    if isinstance(channel.socket, ssl.SSLSocket):
        _refuse(environ, "waitress terminates TLS here and a TLS socket cannot be "
                         "handed off; terminate TLS in a proxy in front of waitress")
        return None
    with channel.requests_lock:  # the main loop has finished parsing what it read
        if channel.request is not None:
            _refuse(environ, "the client sent data before the 101 response and waitress "
                             "has already read it")
            return None
        return take_over(channel.socket)


def release(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    # waitress needs start_response (else it answers 500); the headers it
    # then writes land on the stand-in.  No Upgrade/Connection headers:
    # waitress rejects hop-by-hop headers from an app.  A tuple, not a
    # list: python-engineio takes a list for polling packets.
    start_response("101 Switching Protocols", [])
    return ()
