"""run_in_process on gunicorn and uWSGI: the job runs in a worker process with
the right interpreter (under uWSGI sys.executable is the uwsgi binary), its
progress reaches the client, and SIGTERM still stops the server cleanly.

The module is also the served app (``tests.test_cpu_live:app``): its job
function must be importable by name in the worker process.
"""
import os
import threading

import pytest
from flask import Flask, request

from server import SocketIO
from tests.live.conftest import _unavailable
from tests.live.harness import SERVERS, python_client, running

app = Flask(__name__)
socketio = SocketIO(app, process_pool_size=1)


def square_with_progress(n, report):
    for i in range(n):
        report(i)
    return {"square": n * n, "pid": os.getpid()}


@app.route("/ready")
def ready():
    return "ok"


@socketio.on("job")
def job(n):
    sid, namespace = request.sid, request.namespace

    def progress(value):
        socketio.emit("progress", value, to=sid, namespace=namespace)

    outcome = socketio.run_in_process(square_with_progress, n, progress=progress)
    return {**outcome, "server_pid": os.getpid()}


@pytest.mark.parametrize("name", ["gunicorn-gthread", "uwsgi-router"])
def test_run_in_process_on_real_servers(name, tmp_path):
    kind = SERVERS[name]
    why = _unavailable(kind)
    if why:
        pytest.skip(why)
    with running(kind, tmp_path, app="tests.test_cpu_live:app") as server:
        client, _recorder = python_client(server.url, ["websocket"])
        got, done, result = [], threading.Event(), []

        def on_progress(value):
            got.append(value)

        def on_result(value):
            result.append(value)
            done.set()

        client.on("progress", on_progress)
        try:
            client.emit("job", 7, callback=on_result)
            assert done.wait(60), f"no acknowledgement from {name}; log:\n{server.log_tail()}"
        finally:
            client.disconnect()
        outcome = result[0]
        assert outcome["square"] == 49, outcome
        assert outcome["pid"] != outcome["server_pid"], (
            f"the job ran in the server process {outcome['server_pid']}, not a worker")
        assert sorted(got) == list(range(7)), f"progress values received: {got}"
        code = server.stop()
    assert code in (0, -15, 143), f"{name} exited with {code} on SIGTERM:\n{server.log_tail()}"
    assert "Traceback" not in server.log_text(), server.log_tail()
