"""A plain python-engineio app with WebSocket hand-off, as the lead's engine wires it.

Served by the hand-off tests under gunicorn (``app:app``) and Werkzeug
(``python app.py werkzeug PORT``).  Routes besides /engine.io/:
``/ping`` (plain HTTP), ``/stats`` (JSON: open hand-off WebSockets, threads,
pid) and ``/kick?SID`` (the server disconnects that Engine.IO client).
"""
from __future__ import annotations

import functools
import json
import os
import sys
import threading

import engineio

from server.websocket import HandoffWebSocket, WebSocketRegistry


class HandoffServer(engineio.Server):
    """engineio.Server with the hand-off installed on this instance only."""

    def __init__(self, **kwargs):
        super().__init__(async_mode="threading", **kwargs)
        websocket = HandoffWebSocket
        if os.environ.get("HANDOFF_NO_CONTEXT_TAKEOVER"):  # measure.py
            websocket = functools.partial(HandoffWebSocket, deflate_context_takeover=False)
        if not os.environ.get("HANDOFF_BASELINE"):  # measure.py compares with engine.io's own
            self._async = {**self._async, "websocket": websocket}
        self.websockets = WebSocketRegistry()


eio = HandoffServer(max_http_buffer_size=2_000_000)


@eio.on("message")
def on_message(sid, data):
    eio.send(sid, data)  # echo, text or binary


def _plain(environ, start_response):
    path = environ.get("PATH_INFO")
    if path == "/ping":
        body = b"pong"
    elif path == "/stats":
        body = json.dumps({"websockets": eio.websockets.count(),
                           "threads": threading.active_count(),
                           "pid": os.getpid()}).encode()
    elif path == "/kick":
        # python-engineio's disconnect() can block for good: close(wait=True)
        # joins the send queue, and the WebSocket handler may queue one more
        # None after the writer has left.  Not ours to fix here; don't wait.
        threading.Thread(target=eio.disconnect, args=(environ.get("QUERY_STRING"),),
                         daemon=True).start()
        body = b"kicked"
    else:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


app = engineio.WSGIApp(eio, _plain)


def worker_exit(server, worker):
    """gunicorn hook (see gunicorn_conf.py): close WebSockets on shutdown."""
    eio.websockets.close_all(timeout=5)


if __name__ == "__main__" and sys.argv[1:2] == ["werkzeug"]:
    from werkzeug.serving import make_server

    make_server("127.0.0.1", int(sys.argv[2]), app, threaded=True).serve_forever()
