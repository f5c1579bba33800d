"""Checks shared by the live tests of our servers' front doors (server/front.py):
the gunicorn worker class and the waitress server."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from .harness import LiveServer, python_client

WAIT = 20


def probes_answer_while_the_request_thread_is_held(server: LiveServer) -> requests.Response:
    """With one request thread held by /hold: /healthz, /readyz and a WebSocket
    handshake still get through.  Returns the /healthz answer."""
    client, events = python_client(server.url, ["websocket"])
    held = {}
    holder = threading.Thread(target=lambda: held.update(
        answer=requests.get(server.url + "/hold", timeout=WAIT + 10).text))
    holder.start()
    try:
        events.wait("held", timeout=WAIT)
        health = requests.get(server.url + "/healthz", timeout=WAIT)
        ready = requests.get(server.url + "/readyz", timeout=WAIT)
        # and a WebSocket handshake: its lane is not the request pool
        second, _ = python_client(server.url, ["websocket"])
        assert second.call("echo", "through", timeout=WAIT) == "through"
        second.disconnect()
        assert held == {}, f"/hold should still hold the only request thread, got {held}"
        assert (health.status_code, health.text) == (200, "ok\n")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready" and ready.json()["sessions"] >= 1
    finally:
        assert client.call("release", timeout=WAIT) is True
        holder.join(WAIT + 10)
        client.disconnect()
    assert held == {"answer": "released"}
    return health


def a_burst_of_websocket_clients_gets_through(server: LiveServer) -> None:
    """40 WebSocket clients, 20 at a time, then a polling client that upgrades."""
    def one(n):
        client, _ = python_client(server.url, ["websocket"])
        try:
            return client.call("echo", n, timeout=WAIT)
        finally:
            client.disconnect()

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(40)))
    assert answers == list(range(40))
    # polling clients and upgrades take the request pool and the lane in turn
    client, _ = python_client(server.url, ["polling", "websocket"])
    try:
        assert client.call("echo", "upgraded", timeout=WAIT) == "upgraded"
    finally:
        client.disconnect()
