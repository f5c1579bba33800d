"""``SocketIO.run()`` / ``stop()`` (server/runner.py) on each embedded server."""
from __future__ import annotations

import signal
import sys
import threading

import flask
import pytest
import requests

from server import ConfigurationError, SocketIO, runner

from .harness import APPS, LiveServer, free_port, python_client, server_env

pytestmark = pytest.mark.live


@pytest.fixture
def app_and_socketio():
    app = flask.Flask(__name__)
    return app, SocketIO(app)


def test_unknown_option_raises_with_a_hint(app_and_socketio):
    app, socketio = app_and_socketio
    with pytest.raises(ConfigurationError, match="'debgu'.*Did you mean 'debug'"):
        socketio.run(app, port=0, debgu=True)


def test_unknown_server_names_the_choices(app_and_socketio):
    app, socketio = app_and_socketio
    with pytest.raises(ConfigurationError, match="gunicorn, waitress, werkzeug"):
        socketio.run(app, port=0, server="tornado")


def test_run_outside_the_main_thread_is_refused(app_and_socketio):
    app, socketio = app_and_socketio
    errors = []

    def target():
        try:
            socketio.run(app, port=0)
        except RuntimeError as exc:
            errors.append(str(exc))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    assert len(errors) == 1 and "main thread" in errors[0], errors


def test_server_choice():
    assert runner.choose_server(None, debug=True) == "werkzeug"
    assert runner.choose_server(None, debug=False) == (
        "waitress" if sys.platform == "win32" else "gunicorn")
    assert runner.choose_server("waitress", debug=True) == "waitress"


def test_plan_defaults_follow_flask_socketio(app_and_socketio):
    app, socketio = app_and_socketio
    plan = runner.make_plan(socketio, app, None, None, {})
    assert (plan.host, plan.port, plan.threads, plan.log_output) == ("127.0.0.1", 5000, 100, False)
    app.config["SERVER_NAME"] = "example.test:7001"
    assert runner.make_plan(socketio, app, None, None, {}).port == 7001
    debug = runner.make_plan(socketio, app, "0.0.0.0", 8080, {"debug": True})
    assert (debug.server, debug.use_reloader, debug.log_output, debug.port) == \
        ("werkzeug", True, True, 8080)


def test_stop_without_run_says_why(app_and_socketio):
    _app, socketio = app_and_socketio
    with pytest.raises(RuntimeError, match="not serving through run"):
        socketio.stop()


@pytest.mark.parametrize("server", ["gunicorn", "waitress", "werkzeug"])
def test_run_serves_websockets_and_stop_from_a_handler_ends_it(server, tmp_path):
    port = free_port()
    live = LiveServer(f"run-{server}",
                      [sys.executable, str(APPS / "liveapp.py"), "--port", str(port),
                       "--server", server],
                      server_env(), port, tmp_path / f"run-{server}.log")
    live.start()
    try:
        client, events = python_client(live.url, ["websocket"], auth={"k": "v"})
        assert events.wait("welcome")[0]["auth"] == {"k": "v"}
        assert client.call("echo", b"\x00\xff", timeout=10) == b"\x00\xff"
        banner = f"serving {live.url} with {server} (1 process, 100 threads"
        assert banner in live.log_text(), f"no start-up banner {banner!r} in the log"
        assert requests.get(live.url + "/stop", timeout=10).status_code == 200
        events.wait("disconnect", timeout=15)
        assert live.proc.wait(20) == 0, f"run() exited with {live.proc.returncode}"
    finally:
        live.stop()


def test_python_m_server_run_serves_the_demo_by_default(tmp_path):
    port = free_port()
    live = LiveServer("python -m server run",
                      [sys.executable, "-m", "server", "run", "--port", str(port)],
                      server_env(), port, tmp_path / "server-run.log", ready_path="/")
    live.start()
    try:
        # the demo's own behaviour is tested elsewhere: here, that it is served
        assert f"serving {live.url} with gunicorn" in live.log_text()
        live.proc.send_signal(signal.SIGTERM)
        assert live.proc.wait(20) == 0, f"exited with {live.proc.returncode}"
    finally:
        live.stop()
