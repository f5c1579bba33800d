"""Two servers sharing a Redis message queue, and a write-only external emitter."""
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import socketio as sio_client
from flask import Flask

from server import SocketIO, join_room
from tests.livesupport import serve_in_thread
from tests.redis_support import RedisServer


@pytest.fixture(scope="module")
def redis_url():
    redis = RedisServer()
    redis.start()
    yield redis.url
    redis.stop()


def _app(url, channel="test-channel"):
    app = Flask(__name__)
    socketio = SocketIO(app, message_queue=url, channel=channel)

    @socketio.on("join")
    def join(room):
        join_room(room)
        return "joined"

    @socketio.on("shout")
    def shout(data):
        socketio.emit("heard", data)

    return app, socketio


class Inbox:
    def __init__(self, expected):
        self.items = []
        self.expected = expected
        self.full = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, data):
        with self.lock:
            self.items.append(data)
            if len(self.items) >= self.expected:
                self.full.set()


def test_broadcast_and_external_emitter_cross_servers(redis_url):
    app1, _ = _app(redis_url)
    app2, _ = _app(redis_url)
    with serve_in_thread(app1) as url1, serve_in_thread(app2) as url2:
        clients, heard, room_msgs = [], [], []
        try:
            for url in (url1, url2):
                client = sio_client.Client(reconnection=False)
                inbox, room_inbox = Inbox(1), Inbox(1)
                client.on("heard", inbox)
                client.on("news", room_inbox)
                client.connect(url, transports=["websocket"], wait_timeout=10)
                clients.append(client)
                heard.append(inbox)
                room_msgs.append(room_inbox)
            clients[1].call("join", "newsroom", timeout=10)
            clients[0].emit("shout", "hello everyone")
            for n, inbox in enumerate(heard):
                assert inbox.full.wait(10), f"client {n} did not hear the broadcast"
                assert inbox.items == ["hello everyone"]
            script = textwrap.dedent(f"""
                from server import SocketIO
                SocketIO(message_queue={redis_url!r}, channel="test-channel").emit(
                    "news", {{"from": "cron"}}, to="newsroom")
            """)
            done = subprocess.run([sys.executable, "-c", script], timeout=60,
                                  capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            assert room_msgs[1].full.wait(10), "the external emitter's message did not arrive"
            assert room_msgs[1].items == [{"from": "cron"}]
            # the client outside the room: a round-trip after the room message
            # has been delivered shows nothing came for it
            clients[0].call("join", "elsewhere", timeout=10)
            assert room_msgs[0].items == []
        finally:
            for client in clients:
                client.disconnect()


def test_write_only_emitter_has_no_app():
    socketio = SocketIO(message_queue="redis://127.0.0.1:1/0")
    assert socketio.server.manager.write_only is True
    assert socketio.sockio_mw is None


def test_kombu_amqp_queue_across_two_servers():
    from tests.amqp_support import Broker

    broker = Broker()
    broker.start()
    try:
        channel = f"amqp-test-{time.monotonic_ns()}"
        app1, _ = _app(broker.url, channel=channel)
        app2, _ = _app(broker.url, channel=channel)
        with serve_in_thread(app1) as url1, serve_in_thread(app2) as url2:
            clients, inboxes = [], []
            try:
                for url in (url1, url2):
                    client = sio_client.Client(reconnection=False)
                    inbox = Inbox(1)
                    client.on("heard", inbox)
                    client.connect(url, transports=["websocket"], wait_timeout=10)
                    clients.append(client)
                    inboxes.append(inbox)
                clients[0].emit("shout", "over amqp")
                for n, inbox in enumerate(inboxes):
                    assert inbox.full.wait(60), f"client {n} did not hear the AMQP broadcast within 60 s"
                    assert inbox.items == ["over amqp"]
            finally:
                for client in clients:
                    client.disconnect()
    finally:
        broker.stop()
