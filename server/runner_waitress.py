# design:
#   waitress's asyncore loop runs in the calling (main) thread; its worker
#   threads run the app.  stop() may come from any thread: it closes the
#   clients (SocketIO.shutdown), then hands a thunk to the loop thread through
#   waitress's trigger (the one thread-safe way into the loop), which closes
#   the listener and every channel; the loop ends when nothing is left to
#   poll, and run() returns after the worker threads are told to stop.
"""run() on embedded waitress (POSIX and Windows)."""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("server")


def serve(plan: Any, handle: Any, banner: str) -> None:
    import waitress

    if plan.certfile or plan.ssl_context is not None:
        raise ValueError("waitress does not terminate TLS. Fix: put a TLS proxy (nginx) "
                         "in front, or run(server='gunicorn', certfile=..., keyfile=...)")
    server = waitress.create_server(
        plan.app, host=plan.host, port=plan.port, threads=plan.threads,
        connection_limit=plan.capacity,
        # long-polling requests wait up to ping_interval for data; do not cut
        # idle channels before the Engine.IO ping has had its chance
        channel_timeout=120, ident="server")

    def close_everything() -> None:  # runs in the loop thread
        server.close()
        for channel in list(server.active_channels.values()):
            channel.close()

    def stop() -> None:
        plan.socketio.shutdown(reason="server stopping", timeout=plan.graceful_timeout)
        server.trigger.pull_trigger(close_everything)

    handle.stopper = stop
    log.info("%s", banner)
    try:
        server.run()
    finally:
        server.task_dispatcher.shutdown(timeout=plan.graceful_timeout)
