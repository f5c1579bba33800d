"""Take a connection away from a WSGI server that keeps using its socket object.

Shared by the gunicorn and Werkzeug drivers.  Both servers, after the
application returns, write a response and then shut down and close the
socket object they handed us in ``environ``.  ``shutdown`` acts on the
connection, not on a descriptor, so a plain ``dup`` is not enough: the
server's shutdown would end our WebSocket too.

:func:`take_over` gives us a duplicate descriptor of the connection and puts,
under the server's descriptor number, a socket whose peer has already gone.
From then on the server sees what it sees every day when a client hangs up:
reads return end-of-file, writes fail with EPIPE (a quiet, debug-level
"client went away" path in both servers), shutdown and close affect nothing
of ours.  No server internals are touched; only the descriptor changes.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from typing import Any


def take_over(server_sock: socket.socket) -> socket.socket:
    """A blocking socket for ``server_sock``'s connection, now ours alone.

    ``server_sock`` must be a plain socket (an ``ssl.SSLSocket`` cannot be
    duplicated: its TLS state lives in the server's object).
    """
    ours = server_sock.dup()
    try:
        stand_in, peer = socket.socketpair()
        peer.close()  # the stand-in's peer has gone: EOF on read, EPIPE on write
        with stand_in:
            # atomic: the server's descriptor number now names the stand-in
            os.dup2(stand_in.fileno(), server_sock.fileno(), inheritable=False)
    except OSError:
        ours.close()  # the server's socket is untouched
        raise
    ours.setblocking(True)
    return ours


def release_switched(environ: dict[str, Any],
                     start_response: Callable[..., Any]) -> Iterable[bytes]:
    """What the app returns to the server once the connection is taken over.

    The 101 status is for the server's access log only: the server's write
    lands on the stand-in and fails quietly, so its thread returns at once.
    Not a list: python-engineio would take a list for polling packets.
    """
    start_response("101 Switching Protocols",
                   [("Upgrade", "websocket"), ("Connection", "Upgrade")])
    return ()
