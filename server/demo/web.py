"""The demo's HTTP side: the page, the locally installed Socket.IO client,
a health check, and the security headers on every Flask response."""
from __future__ import annotations

import os

from flask import Flask, Response, abort, render_template, send_file

#: the official client, installed from npm (``npm ci --prefix server/demo``,
#: which scripts/bootstrap runs) and served from here: no CDN
CLIENT_JS = os.path.join(os.path.dirname(__file__), "node_modules", "socket.io-client",
                         "dist", "socket.io.min.js")

#: scripts and styles only from this origin (no inline code, no CDN); the
#: Socket.IO connection (polling and ws:/wss:) only to this origin
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")


def register(app: Flask) -> None:
    @app.route("/")
    def index() -> str:
        return render_template("index.html")

    @app.route("/vendor/socket.io.min.js")
    def socketio_client() -> Response:
        if not os.path.exists(CLIENT_JS):
            abort(404, "socket.io-client is not installed: run "
                       "npm ci --prefix server/demo (scripts/bootstrap does)")
        return send_file(CLIENT_JS, mimetype="text/javascript", max_age=3600)

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response
