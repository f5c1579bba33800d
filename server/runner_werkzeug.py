# design:
#   Werkzeug's serve_forever loop runs in the calling (main) thread, one
#   thread per connection.  Without the reloader, stop() closes the clients
#   and calls BaseServer.shutdown() from a helper thread (shutdown() waits for
#   the loop, so it must not run on the loop's own thread, and a handler
#   should not block on it).  With the reloader the serving process is a
#   child that Werkzeug starts; stop() interrupts this process's main thread
#   as Ctrl-C would.
"""run() on the Werkzeug development server (debug=True or server='werkzeug')."""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

log = logging.getLogger("server")


def serve(plan: Any, handle: Any, banner: str) -> None:
    from werkzeug.serving import make_server, run_simple

    ssl_context = plan.ssl_context
    if ssl_context is None and plan.certfile:
        ssl_context = (plan.certfile, plan.keyfile)
    if not plan.log_output:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if plan.use_reloader:
        handle.stopper = lambda: os.kill(os.getpid(), signal.SIGINT)
        if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
            log.info("%s", banner)
        run_simple(plan.host, plan.port, plan.app, use_reloader=True,
                   use_debugger=plan.debug, threaded=True, ssl_context=ssl_context,
                   **plan.reloader_options)
        return
    server = make_server(plan.host, plan.port, plan.app, threaded=True,
                         ssl_context=ssl_context)

    def stop() -> None:
        plan.socketio.shutdown(reason="server stopping", timeout=plan.graceful_timeout)
        threading.Thread(target=server.shutdown, name="server-stop", daemon=True).start()

    handle.stopper = stop
    log.info("%s", banner)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
