"""The demo application (server/demo), in memory through the test client."""
from __future__ import annotations

import os
import re
import time

import pytest

from server.demo import create_app
from server.demo.primes import MAX_LIMIT, sieve
from server.demo.web import CLIENT_JS


@pytest.fixture
def app():
    app = create_app(clock_interval=0.05, max_jobs=1)
    yield app
    app.extensions["demo"].clock.stop()


def client(app, name="alice", namespace=None):
    sio = app.extensions["demo"].socketio
    return sio.test_client(app, namespace=namespace, auth={"name": name} if name else None)


def events(c, name, namespace=None):
    return [r["args"][0] for r in c.get_received(namespace) if r["name"] == name]


def names_in(presence):
    return [m["name"] for m in presence["members"]]


@pytest.mark.parametrize("auth", [None, {}, {"name": ""}, {"name": "   "}, {"name": "x" * 33},
                                  {"name": 7}, "alice"])
def test_connect_without_a_valid_name_is_refused(app, auth):
    sio = app.extensions["demo"].socketio
    c = sio.test_client(app, auth=auth)
    assert not c.is_connected(), f"auth={auth!r} was accepted"


def test_welcome_carries_the_name_and_sid(app):
    alice = client(app, "  alice ")
    (welcome,) = events(alice, "welcome")
    assert welcome["name"] == "alice"
    assert welcome["sid"]


def test_presence_follows_join_leave_and_disconnect(app):
    alice, bob = client(app, "alice"), client(app, "bob")
    assert alice.emit("join", "lobby", callback=True) == {"room": "lobby"}
    assert bob.emit("join", "lobby", callback=True) == {"room": "lobby"}
    assert names_in(events(alice, "presence")[-1]) == ["alice", "bob"]
    assert names_in(events(bob, "presence")[-1]) == ["alice", "bob"]

    bob.emit("leave", "lobby", callback=True)
    assert names_in(events(alice, "presence")[-1]) == ["alice"]

    bob.emit("join", "lobby", callback=True)
    alice.get_received()
    bob.disconnect()
    assert names_in(events(alice, "presence")[-1]) == ["alice"]


def test_a_client_may_be_in_a_bounded_number_of_rooms(app):
    from server.demo.chat import MAX_ROOMS

    alice = client(app)
    for n in range(MAX_ROOMS):
        assert alice.emit("join", f"room{n}", callback=True) == {"room": f"room{n}"}
    assert alice.emit("join", "room0", callback=True) == {"room": "room0"}  # already in it
    assert alice.emit("join", "one-more", callback=True) == {
        "error": f"you are in {MAX_ROOMS} rooms already: leave one first"}
    alice.emit("leave", "room0", callback=True)
    assert alice.emit("join", "one-more", callback=True) == {"room": "one-more"}


def test_messages_are_acknowledged_and_reach_the_room_only(app):
    alice, bob, carol = client(app, "alice"), client(app, "bob"), client(app, "carol")
    alice.emit("join", "lobby", callback=True)
    bob.emit("join", "lobby", callback=True)
    carol.emit("join", "elsewhere", callback=True)
    for c in (alice, bob, carol):
        c.get_received()

    ack = alice.emit("say", {"room": "lobby", "text": " hello "}, callback=True)
    assert isinstance(ack.get("id"), int), f"expected an ack with the message id, got {ack!r}"
    expected = {"id": ack["id"], "room": "lobby", "from": "alice", "text": "hello"}
    assert events(alice, "said") == [expected]
    assert events(bob, "said") == [expected]
    assert events(carol, "said") == []


@pytest.mark.parametrize("data, error", [
    ({"room": "lobby", "text": ""}, "a message has 1 to 500 characters"),
    ({"room": "lobby", "text": "x" * 501}, "a message has 1 to 500 characters"),
    ({"room": "other", "text": "hi"}, "join room 'other' before writing to it"),
    ({"room": "", "text": "hi"}, "a room name has 1 to 32 characters"),
    ("hello", "expected an object with 'room'"),
])
def test_bad_messages_get_an_error_in_the_ack(app, data, error):
    alice = client(app)
    alice.emit("join", "lobby", callback=True)
    assert alice.emit("say", data, callback=True) == {"error": error}


def test_private_message_reaches_one_client(app):
    alice, bob, carol = client(app, "alice"), client(app, "bob"), client(app, "carol")
    bob_sid = events(bob, "welcome")[0]["sid"]
    for c in (alice, carol):
        c.get_received()
    assert alice.emit("private", {"to": bob_sid, "text": "psst"}, callback=True) == {"to": "bob"}
    (got,) = events(bob, "private")
    assert (got["from"], got["text"]) == ("alice", "psst")
    assert events(carol, "private") == []
    assert events(alice, "private") == []


def test_private_message_to_nobody_is_an_error(app):
    alice = client(app)
    reply = alice.emit("private", {"to": "no-such-sid", "text": "hi"}, callback=True)
    assert reply == {"error": "that user is not connected"}


def test_round_trip_ping_echoes(app):
    assert client(app).emit("ping_server", 12.5, callback=True) == 12.5


def test_clock_is_broadcast_by_a_background_task(app):
    alice = client(app)
    deadline = time.monotonic() + 5
    ticks = []
    while not ticks and time.monotonic() < deadline:
        ticks = events(alice, "clock")
        time.sleep(0.02)
    assert ticks, "no clock event within 5 s (interval 0.05 s)"
    assert re.fullmatch(r"\d\d:\d\d:\d\d", ticks[0]["time"]), ticks[0]


def test_cpu_job_streams_progress_and_acks_the_result(app):
    jobs = client(app, "alice", namespace="/jobs")
    result = jobs.emit("primes", 2_000_000, callback=True, namespace="/jobs")
    assert result["primes"] == 148933 and result["largest"] == 1999993, result
    assert result["by"] == "alice"  # the session set on connect
    progress = events(jobs, "progress", "/jobs")
    assert progress, "no progress events"
    assert progress[-1] == {"done": 2_000_000, "limit": 2_000_000, "primes": 148933}
    dones = [p["done"] for p in progress]
    assert dones == sorted(dones), f"progress went backwards: {dones}"


def test_progress_goes_to_the_requester_only(app):
    alice, bob = client(app, "alice", "/jobs"), client(app, "bob", "/jobs")
    alice.emit("primes", 1000, callback=True, namespace="/jobs")
    assert events(bob, "progress", "/jobs") == []


@pytest.mark.parametrize("limit", [1, 0, -5, MAX_LIMIT + 1, 2.5, "100", True, None])
def test_cpu_job_rejects_bad_limits(app, limit):
    jobs = client(app, namespace="/jobs")
    reply = jobs.emit("primes", limit, callback=True, namespace="/jobs")
    assert reply == {"error": f"limit must be a whole number from 2 to {MAX_LIMIT:,}, "
                              f"not {limit!r}"}


def test_cpu_jobs_are_bounded_per_process(app):
    demo = app.extensions["demo"]
    jobs = client(app, namespace="/jobs")
    assert demo.jobs._slots.acquire(blocking=False)  # the one slot (max_jobs=1) is taken
    try:
        reply = jobs.emit("primes", 100, callback=True, namespace="/jobs")
    finally:
        demo.jobs._slots.release()
    assert reply == {"error": "the server already runs 1 jobs; try again when one has "
                              "finished"}
    assert jobs.emit("primes", 100, callback=True, namespace="/jobs")["primes"] == 25


def test_jobs_namespace_needs_a_name_too(app):
    assert not client(app, None, namespace="/jobs").is_connected("/jobs")


@pytest.mark.parametrize("limit, count", [(2, 0), (3, 1), (100, 25), (1000, 168),
                                          (10**6, 78498)])
def test_sieve_counts(limit, count):
    *_, last = sieve(limit)
    assert (last.done, last.primes) == (limit, count)


def test_sieve_across_segment_boundaries_matches_trial_division():
    def is_prime(n):
        return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))

    for limit in (50, 64, 65, 97, 250):
        steps = list(sieve(limit, segment=16))  # many small segments
        assert steps[-1].primes == sum(map(is_prime, range(limit))), limit
        assert steps[-1].largest == max(n for n in range(limit) if is_prime(n))
        assert [s.done for s in steps] == [min(x + 16, limit) for x in range(0, limit, 16)]


def test_page_has_a_strict_content_security_policy(app):
    page = app.test_client().get("/")
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "default-src 'self'" in csp, csp
    html = page.get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all('src="/' in attrs for attrs in scripts), (
        f"every script must be a same-origin file (no inline code): {scripts}")
    assert "<style" not in html and " style=" not in html
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_page_loads_the_local_socketio_client_and_its_assets(app):
    http = app.test_client()
    html = http.get("/").get_data(as_text=True)
    assert 'src="/vendor/socket.io.min.js"' in html
    for path in ("/static/demo.js", "/static/demo.css"):
        assert http.get(path).status_code == 200, path
    js = http.get("/vendor/socket.io.min.js")
    if not os.path.exists(CLIENT_JS):  # npm ci --prefix server/demo not run
        assert js.status_code == 404 and b"npm ci --prefix server/demo" in js.data
    else:
        assert js.status_code == 200 and js.mimetype == "text/javascript"
        assert b"Socket.IO" in js.data[:300], js.data[:300]


def test_healthz_is_the_servers_own(app):
    # /healthz is answered by the server (server/ops.py), not by a demo route
    response = app.test_client().get("/healthz")
    assert (response.status_code, response.data) == (200, b"ok\n")


def test_our_own_faults_are_not_shown_to_clients(caplog):
    from server.demo.validate import BadInput, error_reply

    assert error_reply(BadInput("too long")) == {"error": "too long"}
    assert error_reply(RuntimeError("db password is hunter2")) == {
        "error": "internal error (logged on the server)"}
    assert "hunter2" in caplog.text  # the details went to the log
