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
    # server/waitress_server.py: the main loop calls server.add_task(channel)
    # from channel.received() with requests_lock held, and channel.service()
    # calls it for the next pipelined request; an idle channel flushes its
    # outbufs and closes on close_when_flushed; handle_accept accepts one
    # connection into the loop's map; the names in
    # test_waitress_server_relies_on_these_names.  (The hand-off driver's own
    # waitress checks: tests/test_driver_waitress.py, VERIFIED_WAITRESS.)
    "waitress": ("3.0.2",),
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
    for attribute in ("pending_conns", "method_queue", "poller", "nr_conns", "tpool",
                      "worker_connections"):
        assert f"self.{attribute}" in init, f"gthread.ThreadWorker no longer sets {attribute}"
    assert list(inspect.signature(gthread.TConn).parameters) == ["cfg", "sock", "client", "server"]
    assert "data_ready" in inspect.getsource(gthread.TConn.__init__)
    assert "conn.data_ready" in inspect.getsource(worker.handle)
    assert isinstance(gthread.DEFAULT_WORKER_DATA_TIMEOUT, (int, float))


def test_waitress_server_relies_on_these_names():
    import inspect

    from waitress.channel import HTTPChannel
    from waitress.parser import HTTPRequestParser
    from waitress.server import BaseWSGIServer, TcpWSGIServer

    for name in ("add_task", "run", "handle_accept"):
        assert callable(getattr(BaseWSGIServer, name, None)), f"BaseWSGIServer.{name} is gone"
    # one connection per handle_accept, added to the loop's map (self._map)
    accept = inspect.getsource(BaseWSGIServer.handle_accept)
    assert "self.accept()" in accept and "map=self._map" in accept
    assert "len(self._map) >= self.adj.connection_limit" in inspect.getsource(
        BaseWSGIServer.readable)
    init = inspect.signature(TcpWSGIServer.__init__).parameters
    assert {"application", "adj", "sockinfo"} <= set(init), list(init)
    received = inspect.getsource(HTTPChannel.received)
    assert "with self.requests_lock" in received and "self.server.add_task(self)" in received
    assert "self.server.add_task(self)" in inspect.getsource(HTTPChannel.service)
    channel = inspect.getsource(HTTPChannel)
    for attribute in ("outbufs", "outbuf_lock", "total_outbufs_len", "current_outbuf_count",
                      "close_when_flushed", "will_close", "requests", "addr"):
        assert f"self.{attribute}" in channel, f"HTTPChannel no longer uses {attribute}"
    from waitress import wasyncore
    assert "self.socket = sock" in inspect.getsource(wasyncore.dispatcher.set_socket)
    parser = inspect.getsource(HTTPRequestParser)
    for attribute in ("command", "request_uri", "version", "headers", "connection_close",
                      "error", "content_length", "chunked"):
        assert f"self.{attribute}" in parser, f"HTTPRequestParser no longer sets {attribute}"
