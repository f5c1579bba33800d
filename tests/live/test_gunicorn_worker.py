"""server.gunicorn_worker under the shipped gunicorn.conf.py: probes answered on the
accepting thread, WebSocket handshakes in their own pool, the rest as gthread."""
from __future__ import annotations

import json

import pytest

from .front_checks import (
    a_burst_of_websocket_clients_gets_through,
    probes_answer_while_the_request_thread_is_held,
)
from .harness import SERVERS, raw_exchange, running

pytestmark = pytest.mark.live
WAIT = 20


def gunicorn(tmp_path, **env):
    return running(SERVERS["gunicorn-gthread"], tmp_path, **env)


def test_probes_are_answered_while_every_request_thread_is_held(tmp_path):
    with gunicorn(tmp_path, SERVER_THREADS="1", SERVER_HANDSHAKE_THREADS="1") as server:
        health = probes_answer_while_the_request_thread_is_held(server)
        assert health.headers["Connection"] == "close"


def test_inline_answers_are_the_middlewares(tmp_path):
    with gunicorn(tmp_path) as server:
        status, headers, body = raw_exchange(
            server.port, b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (status, headers["content-length"], body) == ("HTTP/1.1 200 OK", "3", b"")
        assert headers["cache-control"] == "no-store" and "date" in headers
        # a browser's request takes gunicorn's path, and the middleware's refusal
        status, _, body = raw_exchange(
            server.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\nSec-Fetch-Site: cross-site\r\n"
            b"Connection: close\r\n\r\n")
        assert status == "HTTP/1.1 403 Forbidden", (status, body)
        status, headers, body = raw_exchange(
            server.port, b"GET /readyz HTTP/1.0\r\n\r\n")
        assert status == "HTTP/1.1 200 OK" and json.loads(body)["status"] == "ready"
        # what the accepting thread leaves to gunicorn gets gunicorn's answer
        status, _, body = raw_exchange(
            server.port, b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\nhi")
        assert status == "HTTP/1.1 405 Method Not Allowed", (status, body)


def test_slow_and_split_requests_are_served(tmp_path):
    with gunicorn(tmp_path) as server:
        # nothing to read when accepted: the connection waits in the poller
        status, _, body = raw_exchange(server.port, b"GET /healthz HTTP/1.1\r\n\r\n", pause=0.3)
        assert (status, body) == ("HTTP/1.1 200 OK", b"ok\n")
        # a head arriving in pieces goes to gunicorn's parser in a request thread
        status, _, body = raw_exchange(
            server.port, b"GET /healthz HTTP/1.1\r\n", b"Host: a\r\nConnection: close\r\n\r\n",
            pause=0.3)
        assert (status, body) == ("HTTP/1.1 200 OK", b"ok\n")
        status, _, body = raw_exchange(server.port, b"GET /ready HTTP/1.1\r\nHost: a\r\n"
                                       b"Connection: close\r\n\r\n")
        assert status == "HTTP/1.1 200 OK" and "pid" in json.loads(body)
        status, _, _ = raw_exchange(server.port, b"BOGUS\r\n\r\n")
        assert status.startswith("HTTP/1.1 400"), status


def test_a_burst_of_websocket_clients_through_one_handshake_thread(tmp_path):
    with gunicorn(tmp_path, SERVER_HANDSHAKE_THREADS="1") as server:
        a_burst_of_websocket_clients_gets_through(server)
