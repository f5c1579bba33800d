"""socketio.run_in_process / submit_process (server/cpu.py): other processes, errors,
progress through a live server, shutdown; the switch_interval setting."""
import concurrent.futures as cf
import os
import pathlib
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool

import pytest
import socketio as sio_client
from flask import Flask, request

from server import SocketIO
from server.errors import ConfigurationError
from server.settings import BY_NAME
from tests.livesupport import serve_in_thread


# -- jobs: module level, so that a worker process can import them ------------------
def pid_and_square(x, offset=0):
    return os.getpid(), x * x + offset


def fail(message):
    raise KeyError(message)


def report_until(n, release_path, report):
    """Report 0..n-1, then wait (bounded) until the test creates release_path."""
    for i in range(n):
        report({"done": i})
    deadline = time.monotonic() + 20
    while not os.path.exists(release_path):
        if time.monotonic() > deadline:
            raise TimeoutError("the test never released the job")
        time.sleep(0.01)
    return {"total": n, "pid": os.getpid()}


def die():
    os._exit(3)  # as if killed: no exception, the process is gone


def wait_for_file(path):
    deadline = time.monotonic() + 20
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


@pytest.fixture
def socketio():
    app = Flask(__name__)
    sock = SocketIO(app, process_pool_size=2)
    yield sock
    sock.shutdown()


def test_result_is_computed_in_another_process(socketio):
    pid, value = socketio.run_in_process(pid_and_square, 12, offset=1)
    assert value == 145, f"expected 12*12+1 = 145 from the worker, got {value!r}"
    assert pid != os.getpid(), f"the job ran in the server process ({pid}), not a worker"
    future = socketio.submit_process(pid_and_square, 3)
    assert isinstance(future, cf.Future)
    assert future.result(timeout=30)[1] == 9


def test_exception_propagates_with_type_message_and_remote_traceback(socketio):
    with pytest.raises(KeyError, match="no such report") as info:
        socketio.run_in_process(fail, "no such report")
    remote = str(info.value.__cause__)
    assert "in fail" in remote and "raise KeyError" in remote, (
        f"expected the worker's traceback as __cause__, got {remote!r}")


def test_a_dead_worker_fails_its_job_and_the_next_job_gets_a_new_pool(socketio):
    with pytest.raises(BrokenProcessPool):
        socketio.run_in_process(die)
    pid, value = socketio.run_in_process(pid_and_square, 4)
    assert value == 16 and pid != os.getpid(), (pid, value)


def test_non_picklable_function_is_a_clear_type_error(socketio):
    with pytest.raises(TypeError, match="picklable function") as info:
        socketio.run_in_process(lambda: 1)
    assert "module level" in str(info.value), str(info.value)
    with pytest.raises(TypeError, match="picklable"):
        socketio.submit_process(pid_and_square, threading.Lock())
    assert not socketio.process_pool.started, "a rejected job must not start the pool"


def test_shutdown_stops_the_pool(socketio, tmp_path):
    release = tmp_path / "release"
    running = socketio.submit_process(wait_for_file, str(release))
    socketio.run_in_process(pid_and_square, 1)  # the pool is up
    workers = socketio.process_pool.processes()
    assert workers, "expected live worker processes before shutdown"
    socketio.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        socketio.submit_process(pid_and_square, 2)
    release.touch()  # the running job finishes, then its worker exits
    assert running.result(timeout=30) != os.getpid()
    for proc in workers:
        proc.join(20)
    alive = [p.pid for p in workers if p.is_alive()]
    assert not alive, f"worker processes {alive} still alive after shutdown()"


def test_pool_size_and_switch_interval_are_validated():
    for bad in ({"process_pool_size": 0}, {"switch_interval": -1},
                {"switch_interval": "fast"}):
        name = next(iter(bad))
        with pytest.raises(ConfigurationError, match=name):
            SocketIO(Flask(__name__), **bad)


def test_switch_interval_is_applied_at_init_app():
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        SocketIO(Flask(__name__), switch_interval=0.002)
        assert sys.getswitchinterval() == pytest.approx(0.002)
        SocketIO(Flask(__name__), switch_interval=None)  # None: left as it is
        assert sys.getswitchinterval() == pytest.approx(0.002)
        SocketIO(Flask(__name__))  # the table's default
        assert sys.getswitchinterval() == pytest.approx(BY_NAME["switch_interval"].default)
        sys.setswitchinterval(0.005)
        emitter = SocketIO()
        emitter.init_app(None, message_queue="memory://")  # write-only: no server here
        assert sys.getswitchinterval() == pytest.approx(0.005), (
            "a write-only emitter must leave its process's switch interval alone")
    finally:
        sys.setswitchinterval(before)


def test_progress_reaches_the_client_while_other_clients_are_answered(tmp_path):
    app = Flask(__name__)
    socketio = SocketIO(app, process_pool_size=1)
    release = tmp_path / "release"
    emitted = []  # server side, in the order the progress callback ran

    @socketio.on("job")
    def job(n):
        sid, namespace = request.sid, request.namespace  # the callback runs off this thread

        def progress(value):
            emitted.append(value["done"])
            socketio.emit("progress", value, to=sid, namespace=namespace)

        return socketio.run_in_process(report_until, n, str(release), progress=progress)

    @socketio.on("ping")
    def ping(n):
        return n

    with serve_in_thread(app) as url:
        worker = sio_client.Client(reconnection=False)
        other = sio_client.Client(reconnection=False)
        got, first, result, done = [], threading.Event(), [], threading.Event()

        def on_progress(value):
            got.append(value["done"])
            first.set()

        def on_result(value):
            result.append(value)
            done.set()

        worker.on("progress", on_progress)
        try:
            worker.connect(url, transports=["websocket"], wait_timeout=10)
            other.connect(url, transports=["websocket"], wait_timeout=10)
            worker.emit("job", 20, callback=on_result)
            assert first.wait(30), "no progress event reached the client"
            # the job cannot end before release exists: these pings are answered during it
            answers = [other.call("ping", i, timeout=10) for i in range(5)]
            assert answers == list(range(5)), f"pings during the job answered {answers}"
            assert not done.is_set(), "the job ended before it was released"
            release.touch()
            assert done.wait(30), "the job's acknowledgement never came"
        finally:
            worker.disconnect()
            other.disconnect()
            socketio.shutdown()
    assert result[0]["total"] == 20 and result[0]["pid"] != os.getpid(), result
    assert emitted == list(range(20)), f"progress callbacks ran in the order {emitted}"
    # python-socketio's client runs each message's handler on its own thread, so
    # the client checks delivery; the order is checked where it is made, above
    assert sorted(got) == list(range(20)), f"the client received {got}"


def test_progress_values_arrive_in_order_and_before_the_result():
    app = Flask(__name__)
    socketio = SocketIO(app, process_pool_size=1)
    path = pathlib.Path(os.devnull)  # exists: report_until returns at once
    try:
        seen = []
        for _ in range(3):
            seen.clear()
            future = socketio.submit_process(report_until, 200, str(path), progress=seen.append)
            outcome = future.result(timeout=30)
            assert outcome["total"] == 200
            assert [v["done"] for v in seen] == list(range(200)), (
                "expected every progress value, in order, before the result; "
                f"got {len(seen)} values")
    finally:
        socketio.shutdown()
