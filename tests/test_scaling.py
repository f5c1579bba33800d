"""Several workers without sticky sessions: the settings, the refusals that
explain themselves, and the queue's logging (in process; the live tests with
gunicorn, nginx and Redis are in test_scaling_live.py)."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
import requests
import socketio as sio_client
from flask import Flask

from server import SocketIO
from server.errors import ConfigurationError
from server.queue_log import QueueLog
from server.workers import WorkerGuard, apply_worker_mode, worker_count
from tests.livesupport import serve_in_thread
from tests.redis_support import RedisServer


@pytest.fixture(scope="module")
def redis_url():
    redis = RedisServer()
    redis.start()
    yield redis.url
    redis.stop()


# -- the setting -----------------------------------------------------------------
def test_worker_count_comes_from_server_workers():
    assert worker_count({}) == 1
    assert worker_count({"SERVER_WORKERS": "4"}) == 4


@pytest.mark.parametrize("raw", ["0", "-2", "many"])
def test_bad_worker_count_names_the_variable(raw):
    with pytest.raises(ConfigurationError) as err:
        worker_count({"SERVER_WORKERS": raw})
    message = str(err.value)
    assert "SERVER_WORKERS" in message and raw in message, message


def test_several_workers_mean_websocket_only():
    options = apply_worker_mode({"message_queue": "redis://127.0.0.1:1/0"}, workers=3)
    assert options["transports"] == ["websocket"]
    one = apply_worker_mode({}, workers=1)
    assert "transports" not in one, f"one worker must keep the default transports, got {one}"


def test_several_workers_without_a_queue_fail_at_start_up_naming_the_fix():
    with pytest.raises(ConfigurationError) as err:
        apply_worker_mode({}, workers=2)
    message = str(err.value)
    assert "SERVER_WORKERS=2" in message and "SERVER_MESSAGE_QUEUE" in message, message


def test_several_workers_refuse_polling_in_transports():
    with pytest.raises(ConfigurationError) as err:
        apply_worker_mode({"message_queue": "redis://127.0.0.1:1/0",
                           "transports": ["polling", "websocket"]}, workers=2)
    assert "transports" in str(err.value) and "sticky" in str(err.value), str(err.value)


def test_extension_reads_server_workers(monkeypatch):
    monkeypatch.setenv("SERVER_WORKERS", "2")
    monkeypatch.delenv("SERVER_MESSAGE_QUEUE", raising=False)
    with pytest.raises(ConfigurationError) as err:
        SocketIO(Flask(__name__))
    assert "SERVER_MESSAGE_QUEUE" in str(err.value), str(err.value)


def test_write_only_emitter_ignores_server_workers(monkeypatch):
    monkeypatch.setenv("SERVER_WORKERS", "2")
    emitter = SocketIO(message_queue="redis://127.0.0.1:1/0")
    assert emitter.server.manager.write_only is True


# -- the refusals ----------------------------------------------------------------
def _refusal(environ_query, workers, sessions=()):
    engine = type("Engine", (), {"sockets": dict.fromkeys(sessions)})()
    guard = WorkerGuard(lambda e, s: [b"app"], engine, "socket.io", workers)
    return guard.refusal({"PATH_INFO": "/socket.io/", "QUERY_STRING": environ_query})


def test_guard_lets_through_what_this_process_can_serve():
    assert _refusal("EIO=4&transport=websocket", workers=2) is None
    assert _refusal("EIO=4&transport=polling&sid=abc", workers=1, sessions=["abc"]) is None
    engine = type("Engine", (), {"sockets": {}})()
    guard = WorkerGuard(lambda e, s: [b"app"], engine, "socket.io", 2)
    assert guard.refusal({"PATH_INFO": "/index.html", "QUERY_STRING": ""}) is None


def test_guard_explains_polling_with_several_workers():
    reason = _refusal("EIO=4&transport=polling", workers=3)
    assert reason is not None and reason.startswith(
        "this server runs 3 workers without sticky sessions: use "
        "transports=['websocket'] on the client, or sticky sessions"), reason


def test_guard_explains_an_unknown_session_behind_a_proxy():
    reason = _refusal("EIO=4&transport=polling&sid=abc", workers=1)
    assert reason is not None and "sticky sessions" in reason and "abc" in reason, reason


def test_polling_request_to_a_multi_worker_server_gets_a_clear_400(monkeypatch, redis_url):
    monkeypatch.setenv("SERVER_WORKERS", "2")
    app = Flask(__name__)
    socketio = SocketIO(app, message_queue=redis_url, channel="scaling-inprocess")
    assert socketio.server.eio.transports == ["websocket"]
    with serve_in_thread(app) as url:
        r = requests.get(url + "/socket.io/?EIO=4&transport=polling", timeout=10)
        assert r.status_code == 400, f"expected 400, got {r.status_code}: {r.text}"
        message = json.loads(r.text)
        assert "runs 2 workers without sticky sessions" in message, message
        assert "transports=['websocket']" in message, message
        # the WebSocket-only client is served as usual
        client = sio_client.Client(reconnection=False)
        try:
            client.connect(url, transports=["websocket"], wait_timeout=10)
            assert client.connected
        finally:
            client.disconnect()
        # and so are the app's own pages
        assert requests.get(url + "/nothing-here", timeout=10).status_code == 404


def test_unknown_session_with_a_queue_says_sticky_sessions(redis_url):
    app = Flask(__name__)
    SocketIO(app, message_queue=redis_url, channel="scaling-inprocess")
    with serve_in_thread(app) as url:
        r = requests.get(url + "/socket.io/?EIO=4&transport=polling&sid=nosuchsid",
                         timeout=10)
        assert r.status_code == 400, f"expected 400, got {r.status_code}: {r.text}"
        assert "sticky sessions" in r.text and "nosuchsid" in r.text, r.text


# -- the queue down: local delivery goes on ------------------------------------------
def test_local_clients_are_served_with_the_queue_unreachable(caplog):
    """python-socketio's PubSubManager delivers in this process before publishing
    (docs/scaling.md relies on it): with nothing listening at the queue's
    address, a broadcast still reaches this process's clients."""
    app = Flask(__name__)
    socketio = SocketIO(app, message_queue="redis://127.0.0.1:1/0", channel="nowhere")

    @socketio.on("shout")
    def shout(data):
        socketio.emit("heard", data)

    with caplog.at_level(logging.ERROR, logger="server.queue"):
        one = socketio.test_client(app)
        two = socketio.test_client(app)
        for n in range(5):
            one.emit("shout", n)
        for client in (one, two):
            got = [p["args"][0] for p in client.get_received() if p["name"] == "heard"]
            assert got == [0, 1, 2, 3, 4], f"local delivery with the queue down: got {got}"
        one.disconnect()
        two.disconnect()
    publish_lines = [r for r in caplog.records if "Cannot publish" in r.getMessage()]
    assert 1 <= len(publish_lines) <= 2, (
        f"5 failed publishes should be logged once, got "
        f"{[r.getMessage() for r in publish_lines]}")


# -- the queue's log ---------------------------------------------------------------
def test_queue_log_says_each_problem_once_with_its_cause(caplog):
    log = QueueLog(logging.getLogger("server.queue.test"), interval=60.0)
    with caplog.at_level(logging.INFO, logger="server.queue.test"):
        for _ in range(50):
            log.error("Cannot publish to redis... retrying",
                      extra={"redis_exception": "Connection refused"})
            log.error("Cannot publish to redis... giving up",
                      extra={"redis_exception": "Connection refused"})
        log.info("pubsub backend initialized.")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["Cannot publish to redis... retrying (Connection refused)",
                     "Cannot publish to redis... giving up (Connection refused)",
                     "pubsub backend initialized."], lines


def test_queue_log_counts_what_it_held_back(caplog):
    log = QueueLog(logging.getLogger("server.queue.test"), interval=0.3)
    with caplog.at_level(logging.ERROR, logger="server.queue.test"):
        log.error("down")
        log.error("down")
        time.sleep(0.35)  # past the interval (a short wait, no event to wait on)
        log.error("down")
    # only this logger's records: other tests' queue listeners may still be
    # retrying (and logging) in background threads
    assert [r.getMessage() for r in caplog.records if r.name == "server.queue.test"] == [
        "down", "down [1 similar messages suppressed]"]


def test_the_queue_manager_uses_queue_log():
    emitter = SocketIO(message_queue="redis://127.0.0.1:1/0")
    assert isinstance(emitter.server.manager.logger, QueueLog)


# -- the docs quote the shipped nginx config -----------------------------------------
def test_docs_quote_the_shipped_nginx_config_verbatim():
    root = Path(__file__).resolve().parent.parent
    shipped = (root / "deploy" / "nginx" / "socketio.conf").read_text()
    doc = (root / "docs" / "nginx.md").read_text()
    assert "```nginx\n" + shipped + "```" in doc, (
        "docs/nginx.md must include deploy/nginx/socketio.conf verbatim: paste it again")
