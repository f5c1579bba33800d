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


class _Overlap:
    """Counts how many calls are inside ``with overlap:`` at once; ``peak`` is the most seen."""

    def __init__(self):
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def __enter__(self):
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)

    def __exit__(self, *exc):
        with self._lock:
            self.running -= 1


def test_a_burst_of_cpu_work_wakes_no_more_than_crowd_workers():
    # fresh=10 s: no event ages out during the test; cpu_share=0.1: the
    # spinning workers count as a busy CPU even on a loaded machine
    pool = HandlerPool(size=12, crowd=2, fresh=10.0, cpu_share=0.1)
    overlap, done = _Overlap(), threading.Event()

    def work(i):
        def run():
            with overlap:
                _spin(0.002)
            if i == 199:
                done.set()
        return run

    for i in range(200):
        pool.submit(i % 50, work(i))  # 50 connections, so ordering does not serialise them
    assert done.wait(30), "the burst did not finish"
    pool.stop()
    assert overlap.peak <= 2, f"expected at most crowd=2 events running at once, saw {overlap.peak}"


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


# -- CPU-heavy kinds ------------------------------------------------------------
def _teach(pool, kind, seconds=0.01):
    """Run two events of ``kind`` using ``seconds`` of CPU each, so the pool learns
    its cost (the first, long by the wall clock, gets the second measured)."""
    done = threading.Event()
    for _ in range(2):
        pool.submit(("teach", kind), lambda: _spin(seconds), kind=kind)
    # the same connection's next event runs once the first is finished and learnt
    pool.submit(("teach", kind), done.set)
    assert done.wait(10), f"the teaching event of {kind!r} did not run"


def _heavy_run(n, cpu, overlap):
    finished = threading.Barrier(n + 1, timeout=30)

    def run():
        with overlap:
            _spin(cpu)
        finished.wait()
    return run, finished


def test_cpu_heavy_kinds_run_one_at_a_time_while_light_events_go_by():
    pool = HandlerPool(size=8, cpu_handlers=1, cpu_heavy=0.005)
    _teach(pool, ("/", "crunch"))
    overlap = _Overlap()
    run, finished = _heavy_run(3, 0.03, overlap)
    light_done = threading.Event()
    for conn in ("a", "b", "c"):
        pool.submit(conn, run, kind=("/", "crunch"))
    # light events of another kind, from other connections, are not held
    for i in range(20):
        pool.submit(("light", i), lambda: None, kind=("/", "ping"))
    pool.submit("last-light", light_done.set, kind=("/", "ping"))
    assert light_done.wait(10), "light events waited behind held heavy ones"
    finished.wait()
    pool.stop()
    assert overlap.peak == 1, (
        f"expected one CPU-heavy event at a time (cpu_handlers=1), saw {overlap.peak}")


def test_without_a_limit_heavy_kinds_run_side_by_side():
    pool = HandlerPool(size=8, cpu_handlers=None, crowd=8)
    overlap = _Overlap()
    run, finished = _heavy_run(3, 0.2, overlap)
    for conn in ("a", "b", "c"):
        pool.submit(conn, run, kind=("/", "crunch"))
    finished.wait()
    pool.stop()
    assert overlap.peak == 3, (
        f"expected all three to overlap with no limit, saw {overlap.peak} at once")


def test_a_heavy_event_waiting_on_io_does_not_hold_the_others():
    pool = HandlerPool(size=4, cpu_handlers=1, cpu_heavy=0.005, patience=30.0)
    _teach(pool, ("/", "crunch"))
    release, other_ran = threading.Event(), threading.Event()

    def computes_then_waits():
        _spin(0.01)
        release.wait(20)  # blocked: its thread's CPU clock stops

    pool.submit("a", computes_then_waits, kind=("/", "crunch"))
    pool.submit("b", other_ran.set, kind=("/", "crunch"))
    try:
        assert other_ran.wait(10), (
            "a heavy event blocked on I/O kept the only CPU-heavy slot (patience is 30 s)")
    finally:
        release.set()
        pool.stop()


def test_a_held_heavy_event_starts_after_patience():
    pool = HandlerPool(size=4, cpu_handlers=1, cpu_heavy=0.005, patience=0.1)
    _teach(pool, ("/", "crunch"))
    other_ran = threading.Event()
    first_still_running = []

    def computes_until_the_other_ran():
        deadline = time.monotonic() + 20
        while not other_ran.is_set() and time.monotonic() < deadline:
            _spin(0.001)
        first_still_running.append(other_ran.is_set())

    pool.submit("a", computes_until_the_other_ran, kind=("/", "crunch"))
    pool.submit("b", other_ran.set, kind=("/", "crunch"))
    assert other_ran.wait(10), "a held heavy event never started while another computed"
    pool.stop(timeout=25)
    assert first_still_running == [True], (
        f"expected the held event to start while the first still computed, got {first_still_running}")


def test_kinds_are_learnt_and_forgotten_by_cost():
    pool = HandlerPool(size=2, cpu_handlers=1, cpu_heavy=0.005)
    for i in range(2000):  # made-up event names that cost nothing are not remembered
        pool.submit(i % 2, lambda: None, kind=("/", f"name-{i}"))
    _teach(pool, ("/", "crunch"))
    with pool._lock:
        remembered = dict(pool._cost)
    assert list(remembered) == [("/", "crunch")], f"remembered kinds: {list(remembered)[:5]}"
    assert pool._is_heavy(("/", "crunch")), remembered
    for _ in range(2):  # a few cheap runs: the kind is light again
        _teach(pool, ("/", "crunch"), seconds=0.0)
    pool.stop()
    assert not pool._is_heavy(("/", "crunch")), pool._cost


def test_cpu_heavy_events_from_clients_take_turns():
    app = Flask(__name__)
    socketio = SocketIO(app, handler_threads=8, event_rate=None)
    overlap = _Overlap()

    @socketio.on("crunch")
    def crunch(n):
        with overlap:
            _spin(0.03)
        return n

    @socketio.on("echo")
    def echo(x):
        return x

    assert socketio.server.handler_pool.cpu_handlers == 1  # the default
    with serve_in_thread(app) as url:
        clients = [sio_client.Client() for _ in range(4)]
        for client in clients:
            client.connect(url, transports=["websocket"], wait_timeout=10)
        try:
            for n in (-1, -2):  # the pool learns its cost
                assert clients[0].call("crunch", n, timeout=10) == n
            answers, done = [], threading.Semaphore(0)
            for i, client in enumerate(clients[:3]):
                for j in range(3):
                    client.emit("crunch", i * 10 + j,
                                callback=lambda n: (answers.append(n), done.release()))
            # a light event of another name is not held behind them
            assert clients[3].call("echo", "light", timeout=10) == "light"
            for _ in range(9):
                assert done.acquire(timeout=20), f"only {len(answers)} of 9 crunch answers came"
            assert sorted(answers) == [0, 1, 2, 10, 11, 12, 20, 21, 22]
            assert overlap.peak == 1, (
                f"expected one CPU-heavy handler at a time (cpu_handlers=1), saw {overlap.peak}")
        finally:
            for client in clients:
                client.disconnect()



class _RacyCondition(threading.Condition):
    """What CPython's Condition does when a notify races a timed wait's timeout:
    the waiter is woken (the notify is spent on it) but wait() returns False."""

    def wait(self, timeout=None):
        woken = super().wait(timeout)
        return woken if timeout is None else False


def test_a_notify_spent_on_a_timed_wait_is_not_lost():
    # two workers: one runs a long heavy event, so the other is the standby,
    # re-checking the held line with a timed wait when a light event comes
    pool = HandlerPool(size=2, cpu_handlers=1, cpu_heavy=0.002, patience=30.0)
    pool._ready_cv = _RacyCondition(pool._lock)
    _teach(pool, ("/", "crunch"), seconds=0.004)
    heavy_done = threading.Semaphore(0)
    pool.submit("a", lambda: (_spin(0.3), heavy_done.release()), kind=("/", "crunch"))
    pool.submit("b", lambda: (_spin(0.01), heavy_done.release()), kind=("/", "crunch"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until the idle worker waits as the standby
        with pool._lock:
            if pool.held == 1 and pool._standby:
                break
        time.sleep(0.001)
    light = threading.Event()
    pool.submit("c", light.set, kind=("/", "ping"))
    assert light.wait(10), "the light event did not run"
    assert heavy_done.acquire(timeout=10) and heavy_done.acquire(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # until both workers wait, idle
        with pool._lock:
            if pool._idle == 2 and not pool.held and not pool._standby:
                break
        time.sleep(0.001)
    # a new event must wake one of them
    later = threading.Event()
    pool.submit("d", later.set)
    ran = later.wait(5)
    pool.stop()
    assert ran, "an event submitted to an idle pool never ran: a wake-up was counted as on its way"
