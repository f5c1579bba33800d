"""A plain python-engineio app with the hand-off installed per instance; echoes.

Routes besides /engine.io/: ``/ping`` and ``/stats`` (JSON: open hand-off
WebSockets, threads, RSS in KiB, pid).
"""
from __future__ import annotations

import json
import os
import threading

import engineio

from server.websocket import HandoffWebSocket, WebSocketRegistry
from tests.driver_support.proc import rss_kib


class HandoffServer(engineio.Server):
    def __init__(self, **kwargs):
        super().__init__(async_mode="threading", **kwargs)
        self._async = {**self._async, "websocket": HandoffWebSocket}
        self.websockets = WebSocketRegistry()


eio = HandoffServer(max_http_buffer_size=2_000_000)


@eio.on("message")
def on_message(sid, data):
    eio.send(sid, data)


def _plain(environ, start_response):
    path = environ.get("PATH_INFO")
    if path == "/ping":
        body = b"pong"
    elif path == "/stats":
        body = json.dumps({"websockets": eio.websockets.count(), "pid": os.getpid(),
                           "threads": threading.active_count(),
                           "rss_kib": rss_kib()}).encode()
    else:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


app = engineio.WSGIApp(eio, _plain)


def _project_app():
    """The same echo on this project's own EngineServer (for measure.py)."""
    from server.engine import EngineServer

    project = EngineServer(max_http_buffer_size=2_000_000)
    project.on("message", lambda sid, data: project.send(sid, data))

    def plain(environ, start_response):
        if environ.get("PATH_INFO") == "/stats":
            body = json.dumps({"websockets": project.websockets.count(), "pid": os.getpid(),
                               "threads": threading.active_count(),
                               "rss_kib": rss_kib()}).encode()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        return _plain(environ, start_response)

    return engineio.WSGIApp(project, plain)


if os.environ.get("ENGINE_UNDER_TEST") == "project":
    app = _project_app()  # chosen by the environment, for measure.py
