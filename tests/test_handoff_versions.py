"""The dependency versions whose behaviour the WebSocket hand-off relies on.

When a new version appears, re-verify what is named for it, then add the
version to its tuple.
"""
from importlib.metadata import version

import pytest

SUPPORTED = {
    # server/websocket/gunicorn.py: environ['gunicorn.socket'] is the
    # connection; gthread's handle()/finish_request() treat EPIPE on the
    # response write as a vanished client (debug log, close, no keep-alive);
    # 'wsgi.multithread' tells gthread from sync.
    # server/gunicorn_worker.py: ThreadWorker.init_process() ends in run();
    # accept(listener), enqueue_req(conn), handle(conn), finish_request(conn,
    # fut) through method_queue.defer(), the pending_conns deque closed by
    # murder_pending() at conn.timeout, the poller, self.wsgi,
    # TConn(cfg, sock, client, server) and TConn.data_ready skipping handle()'s
    # own wait (test_gunicorn_worker_relies_on_these_gthread_names).
    "gunicorn": ("27.0.1",),
    # server/websocket/werkzeug.py: environ['werkzeug.socket'] is the
    # connection; run_wsgi() drains then writes after the app returns, and
    # a ConnectionError there goes to connection_dropped() silently.
    "werkzeug": ("3.1.8", "3.1.9"),
    # server/websocket/handoff.py: socket.Socket._upgrade_websocket calls
    # _async['websocket'](handler, server)(environ, start_response), treats
    # a list result as polling packets, sets the timeout of ws.socket, and
    # the handler uses only wait()/send()/close().
    "python-engineio": ("4.15.1",),
    # server/websocket/handoff.py: WSConnection, its events and
    # ConnectionState, PerMessageDeflate (public API, major version 1).
    "wsproto": ("1.2.0", "1.3.2"),
}


@pytest.mark.parametrize("package", sorted(SUPPORTED))
def test_dependency_version_is_verified(package):
    installed = version(package)
    assert installed in SUPPORTED[package], (
        f"{package} {installed} is not a version the WebSocket hand-off was verified "
        f"against {SUPPORTED[package]}: re-read what tests/test_handoff_versions.py "
        f"names for {package}, run tests/test_handoff_*.py, then add {installed}")


def test_gunicorn_worker_relies_on_these_gthread_names():
    import inspect

    from gunicorn.workers import gthread

    worker = gthread.ThreadWorker
    for name in ("accept", "enqueue_req", "handle", "finish_request", "murder_pending",
                 "init_process", "run"):
        assert callable(getattr(worker, name, None)), f"gthread.ThreadWorker.{name} is gone"
    init = inspect.getsource(worker.__init__) + inspect.getsource(worker.init_process)
    for attribute in ("pending_conns", "method_queue", "poller", "nr_conns", "tpool"):
        assert f"self.{attribute}" in init, f"gthread.ThreadWorker no longer sets {attribute}"
    assert list(inspect.signature(gthread.TConn).parameters) == ["cfg", "sock", "client", "server"]
    assert "data_ready" in inspect.getsource(gthread.TConn.__init__)
    assert "conn.data_ready" in inspect.getsource(worker.handle)
    assert isinstance(gthread.DEFAULT_WORKER_DATA_TIMEOUT, (int, float))
