"""The GC pacer: long-lived objects frozen as sessions grow, reclaimed as they fall,
and a closed connection freed by reference counting alone (nothing left for a
full collection to find)."""
import gc
import threading
import time
import weakref

import pytest
import socketio as sio_client
from flask import Flask

from server import SocketIO
from server.gc_pacing import GCPacer
from server.settings import BY_NAME
from tests.livesupport import serve_in_thread

WAIT = 15


@pytest.fixture
def restore_gc():
    enabled = gc.isenabled()
    gc.unfreeze()  # servers of earlier tests in this process may have frozen objects
    yield
    gc.unfreeze()  # what the test froze goes back to the collector
    if enabled:
        gc.enable()


class Sessions:
    """Fake session counts, and pymalloc blocks: 100 per open session, and with
    ``garbage`` 100 more per closed one (left in cycles until a full pass)."""

    def __init__(self, garbage: bool = True) -> None:
        self.open = 0
        self.opened = 0
        self.garbage = garbage
        self.base = 10_000  # what the application holds

    def blocks(self) -> int:
        return self.base + 100 * (self.opened if self.garbage else self.open)

    def connect(self, n: int) -> None:
        self.open += n
        self.opened += n

    def close(self, n: int) -> None:
        self.open -= n


def started_pacer(garbage: bool = True) -> tuple[Sessions, GCPacer]:
    """A pacer over fake session counts, past its first tick (the start-up pass)."""
    s = Sessions(garbage)
    pacer = GCPacer(lambda: s.open, lambda: s.opened, growth=50, blocks=s.blocks)
    pacer.tick()
    return s, pacer


def test_freezes_as_sessions_grow_and_reclaims_as_they_fall(restore_gc):
    # first tick of the process: a full pass, then start-up objects frozen
    s, pacer = started_pacer()
    assert (pacer.reclaims, pacer.freezes) == (1, 0)
    assert gc.get_freeze_count() > 0, "start-up objects were not frozen"

    s.connect(49)
    pacer.tick()
    assert pacer.freezes == 0, "froze before the sessions grew by `growth`"
    s.connect(1)
    pacer.tick()
    assert (pacer.freezes, pacer.frozen_peak) == (1, 50)

    s.connect(350)  # 400 open: growth is max(50, a tenth of the peak)
    pacer.tick()
    assert (pacer.freezes, pacer.frozen_peak) == (2, 400)
    s.connect(39)
    pacer.tick()
    assert pacer.freezes == 2, "froze for less than a tenth of a 400-session peak"

    s.close(339)  # 100 open: a quarter of the frozen peak
    pacer.tick()
    assert pacer.reclaims == 1, "reclaimed while sessions were still falling"
    pacer.tick()  # no change since the last tick: a quiet moment
    assert (pacer.reclaims, pacer.frozen_peak) == (2, 100), "no reclaim at a quarter of the peak"
    assert gc.get_freeze_count() > 0, "the reclaim did not freeze again"


def test_a_reclaim_waits_for_a_quiet_tick_at_most_its_patience(restore_gc):
    s, pacer = started_pacer()
    s.connect(400)
    pacer.tick()
    s.close(300)
    pacer.tick()
    s.close(1)  # still falling at every tick...
    pacer.tick()
    assert pacer.reclaims == 1, "reclaimed while sessions were still falling"
    pacer.patience = 0.0  # ...until the patience runs out
    s.close(1)
    pacer.tick()
    assert (pacer.reclaims, pacer.frozen_peak) == (2, 98)


def test_reclaims_after_twice_the_frozen_peak_has_closed(restore_gc):
    s, pacer = started_pacer()
    s.connect(100)
    pacer.tick()
    assert pacer.frozen_peak == 100
    # churn at a steady 100: clients leave and others take their place
    for _ in range(19):
        s.close(10)
        s.connect(10)
        pacer.tick()
    assert pacer.reclaims == 1, "reclaimed before 200 sessions had closed"
    s.close(10)
    s.connect(10)
    pacer.tick()
    assert pacer.reclaims == 2, "no reclaim after 200 sessions closed at a peak of 100"


def test_no_full_pass_when_the_closed_sessions_left_no_garbage(restore_gc):
    s, pacer = started_pacer(garbage=False)  # freed by reference counting
    s.connect(400)
    pacer.tick()
    s.close(300)
    pacer.tick()
    pacer.tick()  # a quiet tick at a quarter of the peak
    assert (pacer.reclaims, pacer.skipped, pacer.frozen_peak) == (1, 1, 100), (
        "expected the reclaim skipped (memory back to what 100 sessions hold), got "
        f"{pacer.reclaims - 1} full passes and {pacer.skipped} skipped")
    # churn with the same memory: still no pass
    for _ in range(20):
        s.close(10)
        s.connect(10)
        pacer.tick()
    assert (pacer.reclaims, pacer.skipped) == (1, 2)
    s.garbage = True  # from now on closed sessions leave cycles: the pass is worth it
    for _ in range(20):
        s.close(10)
        s.connect(10)
        pacer.tick()
    assert pacer.reclaims == 2, "no full pass although closed sessions left garbage"


def test_a_child_of_a_frozen_parent_measures_memory_from_its_own_start(restore_gc):
    gc.freeze()  # as a pre-fork parent leaves it: the child skips the start-up pass
    s = Sessions(garbage=False)  # closed sessions freed by reference counting
    s.base = 1_000_000  # a heap much larger than the sessions', as a real app's
    pacer = GCPacer(lambda: s.open, lambda: s.opened, growth=50, blocks=s.blocks)
    pacer.tick()
    assert pacer.reclaims == 0 and pacer.freezes == 1
    s.connect(400)
    pacer.tick()
    s.close(300)
    pacer.tick()
    pacer.tick()
    assert (pacer.reclaims, pacer.skipped) == (0, 1), (
        "a full pass ran although the closed sessions left nothing: the child measured "
        f"its memory from zero ({pacer.reclaims} passes, {pacer.skipped} skipped)")


def test_one_start_up_pass_per_process_and_a_forked_child_starts_over(restore_gc, monkeypatch):
    s = Sessions()
    first = GCPacer(lambda: s.open, lambda: s.opened)
    first.tick()
    assert (first.reclaims, first.freezes) == (1, 0)
    second = GCPacer(lambda: s.open, lambda: s.opened)  # another server, same process
    second.tick()
    assert (second.reclaims, second.freezes) == (0, 1), "a second full start-up pass"
    s.connect(70)
    monkeypatch.setattr("server.gc_pacing.os.getpid", lambda: -1)  # as after fork()
    first.tick()
    assert first.freezes == 1 and first.frozen_peak == 70, (
        "the child did not start over from its own session count")


def test_the_setting_is_declared_and_can_be_turned_off():
    assert BY_NAME["gc_freeze"].default is True
    assert SocketIO(Flask(__name__), gc_freeze=False).server.eio.gc_pacer is None
    assert SocketIO(Flask(__name__)).server.eio.gc_pacer is not None


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]])
def test_closed_connections_are_freed_without_a_collection(restore_gc, transports):
    # the next ping is 25 s away, longer than WAIT: its timer, cancelled at close,
    # must not keep a closed session alive until then
    app = Flask(__name__)
    socketio = SocketIO(app, ping_interval=25, ping_timeout=5)
    eio = socketio.server.eio
    eio.gc_pacer.growth = 10

    @socketio.on("echo")
    def echo(x):
        return x

    with serve_in_thread(app) as url:
        clients = []
        try:
            for i in range(30):
                client = sio_client.Client(reconnection=False)
                client.connect(url, transports=transports, wait_timeout=WAIT)
                clients.append(client)
                assert client.call("echo", i, timeout=WAIT) == i
            deadline = time.monotonic() + WAIT
            while eio.gc_pacer.freezes == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert eio.gc_pacer.freezes >= 1, (
                f"30 sessions open and no freeze after {WAIT}s (peak {eio.gc_pacer.frozen_peak})")
            sessions = [weakref.ref(s) for s in list(eio.sockets.values())]
            assert len(sessions) == 30, f"expected 30 server sessions, found {len(sessions)}"
            gc.disable()  # from here on, only reference counting may free them
            for client in clients:
                client.disconnect()
            clients = []
            deadline = time.monotonic() + WAIT
            while any(r() is not None for r in sessions) and time.monotonic() < deadline:
                time.sleep(0.05)
            alive = [r() for r in sessions if r() is not None]
            gc.unfreeze()  # so that gc.get_referrers() sees every object
            assert not alive, (
                f"{len(alive)} of 30 closed sessions still alive after {WAIT}s without a "
                f"collection (a reference cycle, or something holding them): referrers of "
                f"one: {_referrers(alive[0], alive)}")
        finally:
            for client in clients:
                client.disconnect()


def _referrers(obj, *ignore) -> list[str]:
    skip = {id(x) for x in ignore} | {id(ignore)}
    found = []
    for ref in gc.get_referrers(obj):
        if id(ref) in skip or type(ref).__name__ == "frame":
            continue
        what = type(ref).__name__
        if what == "cell":  # a closure: name it and what holds it
            fns = [f for t in gc.get_referrers(ref) if isinstance(t, tuple)
                   for f in gc.get_referrers(t) if callable(f)]
            holders = [[repr(getattr(h, "f_code", type(h)))[:80] for h in gc.get_referrers(f)
                        if id(h) not in skip][:3] for f in fns[:2]]
            what = "cell of " + ", ".join(
                f"{getattr(f, '__qualname__', f)} held by {held}" for f, held in zip(fns, holders))
        elif isinstance(ref, dict):
            keys = [k for k, v in ref.items() if v is obj]
            owners = [type(o).__name__ for o in gc.get_referrers(ref) if id(o) not in skip][:3]
            what = f"dict[{keys[:2]}] of {owners}"
        found.append(what)
    return found


def test_the_pacer_ticks_on_the_reactor_and_survives_a_restart(restore_gc, monkeypatch):
    ticked = threading.Event()
    original = GCPacer.tick
    pacers = []

    def tick(pacer):
        original(pacer)
        if pacer in pacers and eio.reactor.in_loop():
            ticked.set()

    monkeypatch.setattr(GCPacer, "tick", tick)
    app = Flask(__name__)
    socketio = SocketIO(app)
    eio = socketio.server.eio
    pacers.append(eio.gc_pacer)

    def connected_tick(url: str) -> bool:
        ticked.clear()
        client = sio_client.Client(reconnection=False)
        client.connect(url, transports=["websocket"], wait_timeout=WAIT)
        try:
            return ticked.wait(WAIT)
        finally:
            client.disconnect()

    with serve_in_thread(app) as url:
        assert connected_tick(url), "the pacer did not tick on the reactor thread"
        eio.shutdown()
        assert connected_tick(url), "the pacer did not tick again after the reactor restarted"



def test_the_socketio_middleware_makes_no_class_per_request():
    # python-engineio's middleware defines a class per request under gunicorn
    # (environ['eventlet.input']), which a session's environ kept alive: a
    # cycle per closed connection, left for a full collection
    app = Flask(__name__)
    seen = []
    app.wsgi_app = lambda environ, start_response: seen.append(environ) or []
    socketio = SocketIO(app)
    classes_before = sum(1 for o in gc.get_objects() if isinstance(o, type))
    for _ in range(50):
        socketio.sockio_mw({"PATH_INFO": "/page", "REQUEST_METHOD": "GET",
                            "gunicorn.socket": object()}, lambda *a: None)
    assert len(seen) == 50 and not any("eventlet.input" in e for e in seen)
    classes_after = sum(1 for o in gc.get_objects() if isinstance(o, type))
    assert classes_after - classes_before < 50, (
        f"{classes_after - classes_before} new classes after 50 requests")
