"""The live matrix: every scenario on every server × transport, with two clients.

Servers (tests/live/harness.py SERVERS): gunicorn gthread with the shipped
gunicorn.conf.py, uWSGI's HTTP router and uWSGI http-socket with the shipped
uwsgi.ini, waitress-serve, Werkzeug threaded (``python -m server run``) and
Werkzeug through ``socketio.run(debug=True)``.  Transports: WebSocket only,
polling only, polling upgraded to WebSocket.  Clients: python-socketio's
Client for every scenario (50 of them for the broadcast), and the official
JavaScript client (tests/js/client.js) for the same scenarios on a few
sockets.  Plus, once per server, a request with a 5 KB cookie.
"""
from __future__ import annotations

import concurrent.futures
import hashlib

import pytest
import requests

from .harness import js_client_ready, python_client, run_js

pytestmark = pytest.mark.live


@pytest.fixture
def connect(live_server, transports):
    """Connect python-socketio clients to the cell's server; all closed afterwards."""
    made = []

    def make(auth=None):
        client, recorder = python_client(live_server.url, transports, auth=auth)
        made.append(client)
        return client, recorder

    yield make
    for client in made:
        if client.connected:
            client.disconnect()


def test_connect_with_auth_and_acked_echo(connect, transports):
    auth = {"token": "secret-1", "user": "ada"}
    client, events = connect(auth=auth)
    welcome = events.wait("welcome")[0]
    assert welcome["auth"] == auth, f"server saw auth {welcome['auth']!r}, sent {auth!r}"
    assert welcome["sid"] == client.get_sid()
    expected_transport = "polling" if transports == ["polling"] else "websocket"
    assert client.transport() == expected_transport, \
        f"transports={transports}: expected {expected_transport}, using {client.transport()}"
    payload = {"text": "héllo", "n": [1, 2.5, None, True]}
    assert client.call("echo", payload, timeout=10) == payload


def test_binary_megabyte_round_trip_is_byte_exact(connect):
    client, _ = connect()
    blob = bytes((i * 7 + 3) % 256 for i in range(256)) * 4096  # 1 MiB
    back = client.call("echo", blob, timeout=30)
    assert isinstance(back, bytes), f"expected bytes back, got {type(back).__name__}"
    assert (len(back), hashlib.sha256(back).hexdigest()) == \
        (len(blob), hashlib.sha256(blob).hexdigest())


def test_rooms_are_isolated(connect):
    (a, a_events), (b, b_events), (c, c_events) = connect(), connect(), connect()
    assert a.call("join", "red", timeout=10) == "red"
    assert b.call("join", "blue", timeout=10) == "blue"
    assert a.call("to_room", {"room": "red", "data": "for red"}, timeout=10) is True
    assert b.call("to_room", {"room": "blue", "data": "for blue"}, timeout=10) is True
    # one round trip per client: whatever was sent to it before has arrived
    for client in (a, b, c):
        assert client.call("echo", "flush", timeout=10) == "flush"
    got = {name: events.get("room_message")
           for name, events in (("a", a_events), ("b", b_events), ("c", c_events))}
    assert got == {"a": ["for red"], "b": ["for blue"], "c": []}


def test_broadcast_reaches_50_clients(connect):
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        clients = list(pool.map(lambda _: connect(), range(50)))
    sender = clients[0][0]
    assert sender.call("broadcast", "to all 50", timeout=10) is True
    missing = []
    for n, (_client, events) in enumerate(clients):
        try:
            assert events.wait("broadcast", timeout=10) == ["to all 50"]
        except AssertionError as exc:
            missing.append(f"client {n}: {exc}")
    assert not missing, f"{len(missing)} of 50 clients missed the broadcast: {missing[:3]}"


def test_background_task_emits_to_client(connect):
    client, events = connect()
    assert client.call("start_ticks", 5, timeout=10) is True
    # sorted: python-engineio's client runs each message's handler on a thread
    # of its own, so arrival order is not observable through it (the JS
    # client's scenarios check order)
    assert sorted(events.wait("tick", 5, timeout=10)) == [0, 1, 2, 3, 4]


def test_server_side_disconnect(connect):
    client, events = connect()
    client.emit("kick_me")
    reason = events.wait("disconnect", timeout=10)[0]
    assert reason == client.reason.SERVER_DISCONNECT, \
        f"expected disconnect reason {client.reason.SERVER_DISCONNECT!r}, got {reason!r}"
    client.wait()  # returns once the client's threads have finished
    assert not client.connected


def test_burst_of_50_emits_all_delivered(connect):
    client, events = connect()
    assert client.call("burst", 50, timeout=10) == 50
    # each exactly once; order is checked by the JS client (see above)
    assert sorted(events.wait("burst_item", 50, timeout=10)) == list(range(50))


def test_a_5kb_cookie_is_accepted(live_server):
    # once per server (no transport): uWSGI's 4 KB default buffer drops this request
    cookie = "session=" + "c" * 5000
    response = requests.get(live_server.url + "/cookie", headers={"Cookie": cookie},
                            timeout=10)
    assert response.status_code == 200, \
        f"a 5 KB cookie got HTTP {response.status_code}: {response.text[:200]}"
    assert response.json() == {"cookie_length": len(cookie)}


def test_official_js_client(live_server, transports):
    why = js_client_ready()
    if why:
        pytest.skip(why)
    results = run_js(live_server.url, transports, "all", timeout=90)
    expected = {"connect_auth", "binary", "rooms", "broadcast", "background",
                "server_disconnect", "burst"}
    assert set(results) == expected, f"scenarios run: {sorted(results)}"
    failed = {name: result for name, result in results.items() if not result.get("ok")}
    assert not failed, f"JS client scenarios failed on {live_server.name} {transports}: {failed}"
    if "websocket" in transports:
        assert results["connect_auth"]["transport"] == "websocket", results["connect_auth"]
