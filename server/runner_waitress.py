# design:
#   waitress's asyncore loop runs in the calling (main) thread; its worker
#   threads run the app.  stop() may come from any thread (a handler too): it
#   closes the clients (SocketIO.shutdown) and starts a drain thread.  The
#   drain thread only pulls waitress's trigger (the one thread-safe way into
#   the loop); the thunks run in the loop thread and touch the channels: stop
#   accepting, close idle channels, leave busy ones (a response being written,
#   such as the handler's that called stop()) until they finish or the
#   graceful timeout passes.  When none is left the server closes itself and
#   its trigger; the loop ends with nothing left to poll.
"""run() on embedded waitress (POSIX and Windows), with server.waitress_server's
health answers and handshake lane."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

log = logging.getLogger("server")


def serve(plan: Any, handle: Any, banner: str) -> None:
    from waitress.adjustments import Adjustments

    from .front import Front, HandshakeLane
    from .settings import server_value
    from .waitress_server import FrontServer

    if plan.certfile or plan.ssl_context is not None:
        raise ValueError("waitress does not terminate TLS. Fix: put a TLS proxy (nginx) "
                         "in front, or run(server='gunicorn', certfile=..., keyfile=...)")
    adj = Adjustments(
        host=plan.host, port=plan.port, threads=plan.threads,
        connection_limit=plan.capacity,
        # long-polling requests wait up to ping_interval for data; do not cut
        # idle channels before the Engine.IO ping has had its chance
        channel_timeout=120, ident="server",
        # select() fails outright once a descriptor number passes 1023, and
        # handed-off WebSockets keep many descriptors open: poll() has no limit
        asyncore_use_poll=True)
    if len(adj.listen) > 1:
        log.warning("%s resolves to %d addresses; serving the first, %s. Fix: give an "
                    "IP address as the host", plan.host, len(adj.listen), adj.listen[0][3])
    front = Front.find(plan.app)
    lane = HandshakeLane(server_value("handshake_threads")) if front is not None else None
    server = FrontServer(plan.app, front=front, lane=lane, adj=adj, sockinfo=adj.listen[0])

    finished = threading.Event()

    def drain_step(force: bool) -> None:  # runs in the loop thread
        server.del_channel()  # stop accepting; the listening socket closes below
        for channel in list(server.active_channels.values()):
            if force or not channel.requests:
                channel.close()
        if not server.active_channels and not finished.is_set():
            finished.set()
            server.close()

    def drain() -> None:
        deadline = time.monotonic() + plan.graceful_timeout
        while not finished.is_set():
            force = time.monotonic() > deadline
            server.trigger.pull_trigger(lambda force=force: drain_step(force))
            finished.wait(0.1)

    def stop() -> None:
        plan.socketio.shutdown(reason="server stopping", timeout=plan.graceful_timeout)
        threading.Thread(target=drain, name="server-drain", daemon=True).start()

    handle.stopper = stop
    log.info("%s", banner)
    try:
        server.run()
    finally:
        server.task_dispatcher.shutdown(timeout=plan.graceful_timeout)
        if lane is not None:
            lane.shutdown()
