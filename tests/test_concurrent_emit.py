"""Emitting to one client from many threads never interleaves or corrupts packets.

The client here reads the WebSocket's frames in order, one by one, and decodes
them itself: python-socketio's Client handles each message on a thread of its
own, so it could neither see the order nor reassemble binary packets reliably
under load.
"""
import json
import threading
import time

import pytest
import websocket
from flask import Flask, request
from socketio import packet as sio_packet

from server import SocketIO
from tests.livesupport import serve_in_thread

THREADS = 8
PER_THREAD = 10_000


def _app():
    app = Flask(__name__)
    # the test is about packet integrity, not keep-alive: on a loaded machine
    # the drain of 80,000 events may outlast the default ping cycle
    socketio = SocketIO(app, ping_interval=120, ping_timeout=120)

    @socketio.on("flood")
    def flood(count):
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
def test_eight_threads_ten_thousand_events_each():
    total = THREADS * PER_THREAD
    seen: dict[int, list[int]] = {n: [] for n in range(THREADS)}
    bad = []
    acked = False
    with serve_in_thread(_app()) as url:
        ws = websocket.create_connection(
            url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket",
            timeout=120)
        try:
            assert ws.recv().startswith("0{"), "expected the Engine.IO OPEN packet"
            ws.send("40")
            assert ws.recv().startswith("40{"), "expected the Socket.IO CONNECT answer"
            ws.send(f'421["flood",{PER_THREAD}]')
            partial = None
            count = 0
            deadline = time.monotonic() + 300
            while (count < total or not acked) and time.monotonic() < deadline:
                frame = ws.recv()
                if isinstance(frame, bytes):
                    assert partial is not None, "a binary frame arrived with no packet awaiting it"
                    if not partial.add_attachment(frame):
                        continue
                    pkt, partial = partial, None
                elif frame == "2":
                    ws.send("3")  # pong
                    continue
                else:
                    assert frame[0] == "4", f"unexpected Engine.IO packet {frame[:40]!r}"
                    pkt = sio_packet.Packet(encoded_packet=frame[1:])
                    if pkt.attachment_count:
                        partial = pkt
                        continue
                if pkt.packet_type == sio_packet.ACK:
                    assert pkt.data == ["done"], pkt.data
                    acked = True
                    continue
                name, data = pkt.data[0], pkt.data[1]
                n, i = data["t"], data["i"]
                ok = (data["b"] == bytes([n, i % 256]) * 8) if name == "bin" \
                    else (data["s"] == f"{n}:{i}")
                if not ok:
                    bad.append(data)
                seen[n].append(i)
                count += 1
        finally:
            ws.close()
    assert count == total and acked, f"expected {total} events and the ack, got {count}"
    assert bad == [], f"{len(bad)} corrupted packets, first: {json.dumps(bad[:1], default=str)}"
    for n in range(THREADS):
        # each thread's events arrive complete and in the order it sent them
        assert seen[n] == list(range(PER_THREAD)), f"thread {n}: {len(seen[n])} events, out of order"
