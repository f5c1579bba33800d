# design:
#   Runs in the uWSGI request thread (detach, release); touches only that
#   request's descriptor, which no other uWSGI thread uses.  After detach the
#   connection is reachable through our descriptor alone: uWSGI's descriptor
#   number names /dev/null instead, so whatever uWSGI does with it at the end
#   of the request (write the 101 headers, close; keep-alive reads on
#   --http11-socket) ends there, silently.  No lock, nothing blocks.
"""WebSocket hand-off driver for uWSGI.

Verified against uWSGI 2.0.31 (``plugins/python/uwsgi_pymodule.c``,
``plugins/python/wsgi_subhandler.c``, ``core/utils.c``, ``core/writer.c``,
``proto/*.c``, ``plugins/http/http.c``):

* ``uwsgi.connection_fd()`` is the request's connection (to the client with
  ``--http-socket``; to the HTTP router or to nginx with the uwsgi
  protocol).  It is non-blocking; our duplicate is made blocking.
* uWSGI's native WebSocket API is not used: it works only in the request's
  own thread, cannot tell binary from text frames in 2.0 and shares one
  continuation buffer between threads.
* After the app returns, ``uwsgi_close_request`` writes the headers from
  start_response (if nothing was written yet) and ends the request with
  ``proto_close``: ``close(fd)`` for the uwsgi, http and https protocols;
  ``--http11-socket`` instead keeps the descriptor to read a next request.
  Neither calls shutdown().  We put /dev/null under uWSGI's descriptor
  number, not a peer-less socket as for gunicorn (on which uWSGI logs
  "uwsgi_response_write_headers_do(): Broken pipe" for every WebSocket):
  the header write succeeds into nothing, the access log shows 101 (not
  the 500 uWSGI logs for a request without start_response), and a
  keep-alive read sees end-of-file.
* The request is over as soon as the app returns, so ``harakiri`` and the
  request-time accounting see a short request; the WebSocket lives on in
  this worker (it ends when the worker does: reload, max-requests,
  harakiri on another request).

Through the HTTP router (``--http``) the hand-off needs ``--http-websockets``:
only then does the router pass the client's bytes after the headers to the
worker.  It takes a request for a WebSocket from ``Upgrade: websocket``
with ``Sec-WebSocket-Version`` and ``-Key``, whatever ``Connection`` says
(so Firefox's ``keep-alive, Upgrade`` works too).  Behind nginx
(``uwsgi_pass``) nothing is needed: nginx tunnels after a 101.

Not detectable here: a client that sends frames before it has the 101
(RFC 6455 forbids it; browsers and python-engineio never do) may have them
read into uWSGI's request buffer, where they are lost to us.

Refused (``detach`` returns None, the reason goes to the log once):

* TLS terminated by uWSGI itself (``--https-socket``, ``--suwsgi-socket``,
  ``--ssl-socket``): the bytes on the descriptor are encrypted and the TLS
  state lives in uWSGI.  The HTTPS router (``--https``) and nginx are fine:
  the worker's own connection is plain.
* uWSGI without Python threads (``uwsgi.has_threads`` false): our threads
  would never run.  Add ``--enable-threads`` or ``--threads N``.
* a request from this instance's own HTTP router (``UWSGI_ROUTER=http``)
  when the instance has no ``--http-websockets``: the 101 would reach the
  client but its frames never the worker.  (A router in another instance
  cannot be checked from here.)
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .drivers import REFUSAL_KEY
from .takeover import release_switched

NAME = "uwsgi"

log = logging.getLogger("server.websocket")

#: uWSGI options that bind a socket on which uWSGI itself speaks TLS.
TLS_SOCKET_OPTIONS = ("https-socket", "suwsgi-socket", "ssl-socket")


def matches(environ: Mapping[str, Any]) -> bool:
    return "uwsgi.version" in environ


def tls_addresses(opt: Mapping[str, Any]) -> list[str]:
    """The addresses of the TLS sockets in ``uwsgi.opt`` (``addr,cert,key,...``)."""
    found = []
    for name in TLS_SOCKET_OPTIONS:
        values = opt.get(name)
        if values is None:
            continue
        if not isinstance(values, list):
            values = [values]
        for value in values:
            text = value.decode() if isinstance(value, bytes) else str(value)
            found.append(text.split(",", 1)[0].strip())
    return found


def on_tls_socket(local: Any, addresses: Iterable[str]) -> bool:
    """Whether a connection whose ``getsockname()`` is ``local`` came in on one of
    the TLS sockets at ``addresses``.

    TCP addresses compare by port (a plain and a TLS socket never share a
    port on one host); UNIX ones by path, ``@name`` being the abstract
    ``\\0name``.  An address we cannot read (``=N``, a shared socket) counts
    as a match: refusing is safe, handing encrypted bytes over is not.
    """
    for address in addresses:
        if address.startswith("="):
            return True
        if isinstance(local, tuple):  # AF_INET / AF_INET6
            _, sep, port = address.rpartition(":")
            if not sep or not port.isdigit():
                continue  # a UNIX path, not our kind of address
            if int(port) == local[1]:
                return True
        else:  # AF_UNIX: str path, or abstract name with a leading NUL
            name = local.decode(errors="replace") if isinstance(local, bytes) else str(local)
            if name == address or (address.startswith("@") and name == "\0" + address[1:]):
                return True
    return False


def _refuse(environ: dict[str, Any], reason: str) -> None:
    environ[REFUSAL_KEY] = reason
    log.debug("uwsgi: WebSocket not handed off: %s", reason)


def detach(environ: dict[str, Any]) -> socket.socket | None:
    import uwsgi  # exists only inside a uWSGI worker

    if not uwsgi.has_threads:
        _refuse(environ, "uWSGI runs without Python threads, so a handed-off WebSocket "
                         "would never be served; start uWSGI with --enable-threads or "
                         "--threads N")
        return None
    if (environ.get("UWSGI_ROUTER") == "http" and "http" in uwsgi.opt
            and not any(name in uwsgi.opt for name in ("http-websockets", "http-raw-body"))):
        _refuse(environ, "uWSGI's HTTP router (--http) runs without --http-websockets, so "
                         "it would not pass a WebSocket's frames on to the worker; add "
                         "http-websockets = true to the uWSGI configuration")
        return None
    fd = uwsgi.connection_fd()
    copy = os.dup(fd)
    try:
        ours = socket.socket(fileno=copy)
    except OSError:  # not a socket: uWSGI serving something exotic
        os.close(copy)
        raise
    try:
        if on_tls_socket(ours.getsockname(), tls_addresses(uwsgi.opt)):
            _refuse(environ, "uWSGI terminates TLS on this socket (https-socket / "
                             "suwsgi-socket) and a TLS connection cannot be handed off; "
                             "terminate TLS in nginx or the --https router instead")
            ours.close()
            return None
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            os.dup2(null, fd, inheritable=False)  # atomic: uWSGI's number now names /dev/null
        finally:
            os.close(null)
    except OSError:
        ours.close()  # uWSGI's descriptor is untouched unless dup2 succeeded
        raise
    ours.setblocking(True)
    return ours


def release(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    # uWSGI writes these headers into /dev/null and logs the 101.
    return release_switched(environ, start_response)
