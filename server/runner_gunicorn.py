# design:
#   gunicorn's arbiter runs in the calling (main) thread and forks one gthread
#   worker that inherits the already-loaded app.  The worker serves; the
#   arbiter only supervises.  stop() sends SIGTERM to the arbiter by its PID
#   (recorded before the fork, so a handler running in the worker reaches it
#   too); the arbiter then stops the worker gracefully, whose worker_exit hook
#   closes every client.  The forked worker never returns into the caller's
#   code: it leaves with os._exit once gunicorn is done with it.
"""run() on embedded gunicorn (our gthread worker, one process)."""
from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from .runner_hooks import close_at_worker_exit, close_first_on_sigterm

log = logging.getLogger("server")


def _worker_exit(server: Any, worker: Any) -> None:
    close_at_worker_exit(worker)


def _worker_int(worker: Any) -> None:
    close_at_worker_exit(worker, reason="server interrupted", timeout=1.0)


class EmbeddedGunicorn(BaseApplication):
    """A gunicorn application serving an object already in memory."""

    def __init__(self, wsgi: Any, options: dict[str, Any]) -> None:
        self._wsgi = wsgi
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            if name in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(name, value)

    def load(self) -> Any:
        return self._wsgi


def options_for(plan: Any) -> dict[str, Any]:
    options = {
        "bind": f"[{plan.host}]:{plan.port}" if ":" in plan.host else f"{plan.host}:{plan.port}",
        # one process: a polling session lives in the memory of one process
        "workers": 1,
        "worker_class": "server.gunicorn_worker.ThreadWorker",
        "threads": plan.threads,
        "worker_connections": plan.capacity,
        "graceful_timeout": max(1, round(plan.graceful_timeout)),  # gunicorn wants whole seconds
        "errorlog": "-",
        "accesslog": "-" if plan.log_output else None,
        "post_worker_init": close_first_on_sigterm,
        "worker_exit": _worker_exit,
        "worker_int": _worker_int,
        # no control socket at a shared default path: two run() apps would collide
        "control_socket_disable": True,
        "reload": plan.use_reloader,
    }
    if plan.certfile:
        options.update(certfile=plan.certfile, keyfile=plan.keyfile)
    if plan.ssl_context is not None:
        raise ValueError("run(server='gunicorn') takes TLS as certfile=/keyfile= (or "
                         "ssl_context=(certfile, keyfile)), not an SSLContext object")
    return options


def serve(plan: Any, handle: Any, banner: str) -> None:
    master_pid = os.getpid()
    handle.stopper = lambda: os.kill(master_pid, signal.SIGTERM)
    log.info("%s", banner)
    try:
        EmbeddedGunicorn(plan.app, options_for(plan)).run()
    except SystemExit as exit_:
        if os.getpid() != master_pid:
            # the forked worker is done: leave without running the caller's
            # code that follows socketio.run() a second time
            code = exit_.code if isinstance(exit_.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        if exit_.code not in (0, None):
            raise
