"""server.waitress_server under ``python -m server run --server waitress``: probes
answered on waitress's main loop, WebSocket handshakes in their own lane, the rest
from waitress's request pool."""
from __future__ import annotations

import json
import socket
import sys

import pytest
import requests

from .front_checks import (
    a_burst_of_websocket_clients_gets_through,
    probes_answer_while_the_request_thread_is_held,
)
from .harness import ServerKind, raw_exchange, running, server_env

pytestmark = pytest.mark.live
WAIT = 20


def _embedded_waitress(port, app):
    return ([sys.executable, "-m", "server", "run", "--server", "waitress",
             "--host", "127.0.0.1", "--port", str(port), app],
            server_env(SERVER_GRACEFUL_TIMEOUT="5"))


#: the product's waitress command (the matrix's "waitress" is plain waitress-serve)
WAITRESS_RUN = ServerKind("waitress-run", _embedded_waitress)


def waitress(tmp_path, **env):
    return running(WAITRESS_RUN, tmp_path, **env)


def responses(port, data):
    """Send ``data`` at once and read until the server closes: [(status line, body)]."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall(data)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    out = []
    while raw:
        head, _, raw = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        length = int(headers.get("content-length", 0))
        out.append((lines[0], headers.get("connection"), raw[:length]))
        raw = raw[length:]
    return out


def test_probes_are_answered_while_every_request_thread_is_held(tmp_path):
    with waitress(tmp_path, SERVER_THREADS="1", SERVER_HANDSHAKE_THREADS="1") as server:
        probes_answer_while_the_request_thread_is_held(server)


def test_inline_answers_are_the_middlewares(tmp_path):
    with waitress(tmp_path) as server:
        status, headers, body = raw_exchange(
            server.port, b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert (status, headers["content-length"], body) == ("HTTP/1.1 200 OK", "3", b"")
        assert headers["cache-control"] == "no-store" and "date" in headers
        assert headers["connection"] == "close"
        # a browser's request takes the request pool, and the middleware's refusal
        status, _, body = raw_exchange(
            server.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\nSec-Fetch-Site: cross-site\r\n"
            b"Connection: close\r\n\r\n")
        assert status == "HTTP/1.1 403 Forbidden", (status, body)
        # HTTP/1.0 without keep-alive: answered, then closed
        status, headers, body = raw_exchange(server.port, b"GET /readyz HTTP/1.0\r\n\r\n")
        assert status == "HTTP/1.1 200 OK" and json.loads(body)["status"] == "ready"
        assert headers["connection"] == "close"
        status, _, body = raw_exchange(
            server.port, b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\nhi")
        assert status == "HTTP/1.1 405 Method Not Allowed", (status, body)


def test_kept_alive_and_pipelined_requests_are_answered_in_order(tmp_path):
    with waitress(tmp_path) as server:
        got = responses(server.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                        b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n"
                        b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                        b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        assert [status for status, _, _ in got] == ["HTTP/1.1 200 OK"] * 4, got
        # the first probe answered inline keeps the connection; the one after
        # /ready was scheduled by /ready's request thread, so the pool answered it
        assert (got[0][1], got[3][1]) == ("keep-alive", "close"), got
        assert got[0][2] == got[2][2] == b"ok\n"
        assert "pid" in json.loads(got[1][2]) and json.loads(got[3][2])["status"] == "ready"
        # what follows a probe that closes the connection goes unanswered, as in waitress
        got = responses(server.port, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"
                        b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")
        assert [(status, body) for status, _, body in got] == [("HTTP/1.1 200 OK", b"ok\n")], got
        # a session on the same kept-alive connection as its probes
        with requests.Session() as session:
            for _ in range(3):
                assert session.get(server.url + "/healthz", timeout=WAIT).text == "ok\n"
            assert session.get(server.url + "/ready", timeout=WAIT).status_code == 200


def test_a_burst_of_websocket_clients_through_one_handshake_thread(tmp_path):
    with waitress(tmp_path, SERVER_HANDSHAKE_THREADS="1") as server:
        a_burst_of_websocket_clients_gets_through(server)
