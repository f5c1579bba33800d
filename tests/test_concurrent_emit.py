"""Emitting to one client from many threads never interleaves or corrupts packets."""
import threading

import pytest
import socketio as sio_client
from flask import Flask

from server import SocketIO
from tests.livesupport import serve_in_thread

THREADS = 8
PER_THREAD = 10_000


def _app():
    app = Flask(__name__)
    # the test is about packet integrity: on a loaded machine the client may
    # take longer than the default ping cycle to drain 80,000 events, and a
    # ping queued behind them must not end the session
    socketio = SocketIO(app, ping_interval=120, ping_timeout=120)

    @socketio.on("flood")
    def flood(count):
        from flask import request
        sid = request.sid

        def worker(n):
            for i in range(count):
                if i % 10 == 0:
                    # a binary packet travels as a header plus an attachment:
                    # the kind another thread's packet could split
                    socketio.emit("bin", {"t": n, "i": i, "b": bytes([n, i % 256]) * 8}, to=sid)
                else:
                    socketio.emit("txt", {"t": n, "i": i, "s": f"{n}:{i}"}, to=sid)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return "done"

    return app


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["websocket"])
def test_eight_threads_ten_thousand_events_each(transport):
    app = _app()
    total = THREADS * PER_THREAD
    seen: dict[int, list[int]] = {n: [] for n in range(THREADS)}
    bad = []
    all_in = threading.Event()
    count = [0]
    lock = threading.Lock()

    def record(data, binary):
        n, i = data["t"], data["i"]
        ok = (data["b"] == bytes([n, i % 256]) * 8) if binary else (data["s"] == f"{n}:{i}")
        with lock:
            if not ok:
                bad.append(data)
            seen[n].append(i)
            count[0] += 1
            if count[0] == total:
                all_in.set()

    with serve_in_thread(app) as url:
        client = sio_client.Client(reconnection=False, request_timeout=120)
        client.on("txt", lambda d: record(d, False))
        client.on("bin", lambda d: record(d, True))
        client.connect(url, transports=[transport], wait_timeout=10)
        try:
            assert client.call("flood", PER_THREAD, timeout=120) == "done"
            assert all_in.wait(120), f"expected {total} events, got {count[0]}"
        finally:
            client.disconnect()
    assert bad == [], f"{len(bad)} corrupted packets, first: {bad[:1]}"
    for n in range(THREADS):
        # each thread's events arrive complete and in the order it sent them
        assert seen[n] == list(range(PER_THREAD)), f"thread {n}: {len(seen[n])} events"
