"""A bare WSGI app that drives one hand-off driver directly, without the core.

Served by tests/test_driver_{uwsgi,waitress}.py under the server named by
the environment variable DRIVER_UNDER_TEST.  On a WebSocket upgrade it calls
the driver's ``detach``; then a thread of ours writes the 101 itself (with an
``X-Handoff: echo`` header, so a client can tell it from anything the WSGI
server might write) and echoes every message with wsproto's frame layer.
The text message ``fds?`` is answered with the number of descriptors in this
process that refer to the connection (1: ours alone).

Plain routes: ``/ping``; ``/stats`` (JSON: pid, threads, RSS in KiB, open
WebSockets); ``/slow?SECONDS`` holds the request thread.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import threading
import time

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, TextMessage

from server.websocket import REFUSAL_KEY, load_driver
from tests.driver_support.proc import descriptors_of, rss_kib

DRIVER = load_driver(os.environ["DRIVER_UNDER_TEST"])
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_open: set[int] = set()
_lock = threading.Lock()


def serve(sock: socket.socket, key: str) -> None:
    accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
    ident = id(sock)
    with _lock:
        _open.add(ident)
    try:
        sock.settimeout(60)  # bounded: a test that forgets a client cannot hang us
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                     b"\r\nX-Handoff: echo\r\n\r\n")
        conn = Connection(ConnectionType.SERVER)
        parts: list = []
        while True:
            data = sock.recv(65536)
            if not data:
                return
            conn.receive_data(data)
            for event in conn.events():
                if isinstance(event, Message):
                    parts.append(event.data)
                    if not event.message_finished:
                        continue
                    if isinstance(event, TextMessage):
                        text = "".join(parts)
                        reply: Message = TextMessage(
                            str(descriptors_of(sock)) if text == "fds?" else text)
                    else:
                        reply = BytesMessage(b"".join(parts))
                    parts = []
                    sock.sendall(conn.send(reply))
                elif isinstance(event, Ping):
                    sock.sendall(conn.send(event.response()))
                elif isinstance(event, CloseConnection):
                    sock.sendall(conn.send(event.response()))
                    return
    except OSError:
        pass
    finally:
        sock.close()
        with _lock:
            _open.discard(ident)


def _reply(start_response, status: str, body: bytes):
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
        if not DRIVER.matches(environ):
            return _reply(start_response, "500 Internal Server Error",
                          f"driver {DRIVER.NAME} does not match this server".encode())
        sock = DRIVER.detach(environ)
        if sock is None:
            return _reply(start_response, "400 Bad Request",
                          environ.get(REFUSAL_KEY, "no reason given").encode())
        threading.Thread(target=serve, args=(sock, environ["HTTP_SEC_WEBSOCKET_KEY"]),
                         daemon=True).start()
        return DRIVER.release(environ, start_response)
    path = environ.get("PATH_INFO")
    if path == "/ping":
        return _reply(start_response, "200 OK", b"pong")
    if path == "/stats":
        with _lock:
            count = len(_open)
        return _reply(start_response, "200 OK", json.dumps({
            "pid": os.getpid(), "threads": threading.active_count(),
            "rss_kib": rss_kib(), "open": count}).encode())
    if path == "/slow":
        time.sleep(min(float(environ.get("QUERY_STRING") or 0), 5.0))
        return _reply(start_response, "200 OK", b"slow")
    return _reply(start_response, "404 Not Found", b"")
