"""The bounded handler pool: order per connection, fairness, bounds."""
import threading
import time

import socketio as sio_client
from flask import Flask

from server import SocketIO
from server.dispatch import HandlerPool
from tests.livesupport import serve_in_thread


def test_events_of_one_connection_run_in_order_one_at_a_time():
    pool = HandlerPool(size=4)
    seen, running, overlaps = [], [0], []
    lock = threading.Lock()
    done = threading.Event()

    def task(i):
        def run():
            with lock:
                running[0] += 1
                if running[0] > 1:
                    overlaps.append(i)
            seen.append(i)
            with lock:
                running[0] -= 1
            if i == 199:
                done.set()
        return run

    for i in range(200):
        assert pool.submit("conn", task(i))
    assert done.wait(10)
    pool.stop()
    assert seen == list(range(200))
    assert overlaps == []


def test_a_blocked_connection_does_not_hold_up_others():
    pool = HandlerPool(size=2)
    release = threading.Event()
    other_done = threading.Event()
    pool.submit("slow", release.wait)
    pool.submit("slow", lambda: None)  # queued behind the blocked one
    pool.submit("fast", other_done.set)
    assert other_done.wait(10), "a second connection waited behind a blocked one"
    release.set()
    pool.stop()


def test_full_pool_refuses_after_timeout_and_counts():
    pool = HandlerPool(size=1, max_pending=2, full_timeout=0.05)
    release = threading.Event()
    started = threading.Event()

    def blocker():
        started.set()
        release.wait()

    assert pool.submit("a", blocker)
    assert started.wait(5)
    assert pool.submit("a", lambda: None)
    assert pool.pending == 2 and pool.busy == 1
    assert pool.submit("b", lambda: None) is False
    release.set()
    pool.stop()


def test_unordered_pool_runs_one_connections_events_in_parallel():
    pool = HandlerPool(size=2, ordered=False)
    barrier = threading.Barrier(2, timeout=10)
    results = []
    both = threading.Event()

    def meet():
        results.append(barrier.wait())  # only returns if both run at once
        if len(results) == 2:
            both.set()

    for _ in range(2):
        pool.submit("same", meet)
    assert both.wait(10), f"expected two concurrent runs, got {results}"
    pool.stop(timeout=10)
    assert sorted(results) == [0, 1]


def test_busy_handler_does_not_delay_other_clients_or_pings():
    app = Flask(__name__)
    socketio = SocketIO(app, ping_interval=1, ping_timeout=1, handler_threads=4)
    release = threading.Event()
    entered = threading.Event()

    @socketio.on("block")
    def block():
        entered.set()
        release.wait(30)
        return "released"

    @socketio.on("echo")
    def echo(x):
        return x

    with serve_in_thread(app) as url:
        slow, fast = sio_client.Client(), sio_client.Client()
        dropped = threading.Event()
        slow.on("disconnect", lambda *a: dropped.set())
        slow.connect(url, transports=["websocket"], wait_timeout=10)
        fast.connect(url, transports=["websocket"], wait_timeout=10)
        try:
            answer = {}
            slow.emit("block", callback=lambda r: answer.setdefault("r", r))
            assert entered.wait(10)
            # several ping intervals pass while the handler is busy; the fast
            # client's round-trips meanwhile are the clock
            for i in range(30):
                assert fast.call("echo", i, timeout=10) == i
            assert not dropped.wait(3), "the busy client was dropped (missed pongs)"
            release.set()
            assert slow.call("echo", "after", timeout=10) == "after"
            assert answer.get("r") == "released"
        finally:
            release.set()
            slow.disconnect()
            fast.disconnect()


def _spin(seconds):
    # CPU work holding the GIL except at the interpreter's switches
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_burst_of_cpu_work_wakes_no_more_than_crowd_workers():
    # fresh=10 s: no event ages out during the test; cpu_share=0.1: the
    # spinning workers count as a busy CPU even on a loaded machine
    pool = HandlerPool(size=12, crowd=2, fresh=10.0, cpu_share=0.1)
    lock = threading.Lock()
    running, peak, done = [0], [0], threading.Event()

    def work(i):
        def run():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            _spin(0.002)
            with lock:
                running[0] -= 1
            if i == 199:
                done.set()
        return run

    for i in range(200):
        pool.submit(i % 50, work(i))  # 50 connections, so ordering does not serialise them
    assert done.wait(30), "the burst did not finish"
    pool.stop()
    assert peak[0] <= 2, f"expected at most crowd=2 events running at once, saw {peak[0]}"


def test_workers_blocked_on_io_do_not_count_as_crowd():
    pool = HandlerPool(size=8, crowd=2, fresh=10.0)
    everyone = threading.Barrier(8, timeout=10)
    met = []

    def meet():
        met.append(everyone.wait())  # returns only once all 8 run at once

    for i in range(8):
        pool.submit(i, meet)
    deadline = time.monotonic() + 15
    while len(met) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    pool.stop()
    assert sorted(met) == list(range(8)), (
        f"expected 8 blocked events running together, {len(met)} got through the barrier")


def test_a_light_event_does_not_wait_behind_long_cpu_events():
    pool = HandlerPool(size=4, crowd=2, fresh=0.05)
    light_ran = threading.Event()
    started = threading.Barrier(3, timeout=10)
    still_running = []

    def heavy():
        started.wait()
        end = time.monotonic() + 10
        while not light_ran.is_set() and time.monotonic() < end:
            _spin(0.001)
        still_running.append(light_ran.is_set())

    pool.submit("a", heavy)
    pool.submit("b", heavy)
    started.wait()  # both heavy events run: the crowd is full
    pool.submit("c", light_ran.set)
    assert light_ran.wait(10), "a light event waited behind two long CPU-bound events"
    pool.stop(timeout=15)
    assert still_running == [True, True], (
        f"expected both heavy events to be running when the light one ran, got {still_running}")
