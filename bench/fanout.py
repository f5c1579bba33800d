"""Broadcast fan-out: deliveries per second with 1 and 2 gunicorn workers.

A benchmark, not a test (nothing is asserted about speed)::

    .venv/bin/python bench/fanout.py [--clients 50] [--messages 500] [--procs 2] [--timeout 60]

For each configuration it starts Redis (redis-server, a free loopback port)
and ``gunicorn -k gthread -w W`` serving tests/test_scaling_app.py, connects
``--clients`` WebSocket clients (python-socketio) spread over ``--procs``
processes, has one more client broadcast ``--messages`` messages, and times
from the first send until every client has every message (or ``--timeout``).
Deliveries/s = clients × messages / time.
The clients share the machine with the servers: on a small machine the
figures are a floor, and noisy; run it twice before drawing conclusions.
Every server is stopped by its PID.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import socketio  # noqa: E402  (after the sys.path line above)

from tests.redis_support import RedisServer  # noqa: E402
from tests.test_scaling_live import Gunicorn  # noqa: E402

CONFIGS = (  # (label, workers, queue)
    ("1 worker, no queue", 1, False),
    ("1 worker + Redis", 1, True),
    ("2 workers + Redis", 2, True),
)


class Counter:
    def __init__(self, target: int) -> None:
        self.count = 0
        self.last = 0.0
        self.target = target
        self.lock = threading.Lock()
        self.done = threading.Event()

    def hit(self, _data=None) -> None:
        with self.lock:
            self.count += 1
            self.last = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes
            if self.count >= self.target:
                self.done.set()


def receivers(url: str, clients: int, messages: int, timeout: float, conn) -> None:
    """A process holding ``clients`` receiving clients; reports over ``conn``."""
    counter = Counter(clients * messages)
    conns = []
    try:
        pids = []
        for _ in range(clients):
            client = socketio.Client(reconnection=False)
            client.on("heard", counter.hit)
            client.connect(url, transports=["websocket"], wait_timeout=10)
            conns.append(client)
            pids.append(client.call("whoami", timeout=10)["pid"])
        conn.send(pids)
        conn.recv()  # go
        counter.done.wait(timeout)
        conn.send((counter.count, counter.last))
    finally:
        for client in conns:
            client.disconnect()


def run_one(label: str, workers: int, queue_url: str | None, clients: int,
            messages: int, procs: int, timeout: float) -> dict:
    # the bench's clients all come from 127.0.0.1: lift the per-address caps
    os.environ.update(SERVER_MAX_CONNECTIONS_PER_IP="none", SERVER_HANDSHAKE_RATE="none")
    server = Gunicorn(queue_url, "bench-fanout", label, workers=workers, threads=16)
    children = []
    sender = None
    try:
        server.wait_ready()
        spawn = multiprocessing.get_context("spawn")
        shares = [clients // procs + (n < clients % procs) for n in range(procs)]
        for share in shares:
            parent, child = spawn.Pipe()
            proc = spawn.Process(target=receivers, daemon=True,
                                 args=(server.url, share, messages, timeout, child))
            proc.start()
            children.append((proc, parent))
        pids: dict[int, int] = {}
        for _proc, parent in children:
            if not parent.poll(timeout):
                raise RuntimeError("connecting the clients took longer than --timeout")
            for pid in parent.recv():
                pids[pid] = pids.get(pid, 0) + 1
        sender = socketio.Client(reconnection=False)
        sender.connect(server.url, transports=["websocket"], wait_timeout=10)
        for _, parent in children:
            parent.send("go")
        start = time.monotonic()
        for n in range(messages):
            sender.emit("shout", n)
        delivered, last = 0, start
        for _, parent in children:
            if parent.poll(timeout + 10):
                count, when = parent.recv()
                delivered += count
                last = max(last, when)
        elapsed = max(last - start, 1e-6)
        return {"config": label, "clients": clients, "messages": messages,
                "delivered": delivered, "expected": clients * messages,
                "seconds": elapsed, "rate": delivered / elapsed,
                "split": "/".join(str(v) for v in sorted(pids.values(), reverse=True)),
                "complete": delivered == clients * messages}
    finally:
        if sender is not None:
            sender.disconnect()
        for proc, _ in children:
            proc.join(timeout + 20)
            if proc.is_alive():
                proc.kill()
        server.stop()
        os.environ.pop("SERVER_MAX_CONNECTIONS_PER_IP", None)
        os.environ.pop("SERVER_HANDSHAKE_RATE", None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--procs", type=int, default=2,
                        help="processes the receiving clients are spread over")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds allowed per configuration")
    args = parser.parse_args()
    if not (1 <= args.clients <= 200 and 1 <= args.messages <= 5000
            and 1 <= args.procs <= min(8, args.clients)):
        parser.error("keep it small: 1-200 clients, 1-5000 messages, 1-8 processes")
    redis = RedisServer()
    redis.start()
    rows = []
    try:
        for label, workers, queue in CONFIGS:
            rows.append(run_one(label, workers, redis.url if queue else None,
                                args.clients, args.messages, args.procs, args.timeout))
    finally:
        redis.stop()
    print(f"{'configuration':<20} {'clients':>7} {'msgs':>5} {'delivered':>10} "
          f"{'seconds':>8} {'deliveries/s':>13} {'clients/worker':>15}")
    for r in rows:
        note = "" if r["complete"] else "  (timed out)"
        print(f"{r['config']:<20} {r['clients']:>7} {r['messages']:>5} "
              f"{r['delivered']:>5}/{r['expected']:<5}"
              f"{r['seconds']:>8.2f} {r['rate']:>13.0f} {r['split']:>15}{note}")
    print(f"({os.cpu_count()} CPUs shared by the servers, Redis and {args.procs} client "
          f"processes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
