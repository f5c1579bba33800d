"""gunicorn configuration for a Socket.IO app: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Values come from the SERVER_* environment variables declared once in
server/settings.py (docs/settings.md lists them); gunicorn's own command-line
flags still win over this file.  Check it with
``gunicorn --check-config -c gunicorn.conf.py wsgi:app``.
"""
import os
import sys

from server.errors import ConfigurationError
from server.runner_hooks import close_at_worker_exit, close_first_on_sigterm
from server.settings import server_value
from server.tls import GunicornSSLContext, check_gunicorn_config

# -- Processes ---------------------------------------------------------------
# Exactly one worker process.  A polling client sends a request every few
# seconds, and every request of an Engine.IO session must reach the process
# that holds the session in memory; gunicorn balances requests across
# workers with no stickiness, so a second worker would answer "unknown sid"
# (HTTP 400) to half of them.  Scale up with threads here, and out with
# several single-worker instances behind a sticky proxy (nginx ip_hash)
# sharing a message queue (SocketIO(message_queue=...)).
# SERVER_WORKERS=N (N > 1) is the other supported mode, on one machine: N
# workers without sticky sessions, WebSocket only (every client must use
# transports=['websocket']) and SERVER_MESSAGE_QUEUE required, so that an
# emit in one worker reaches the clients of the others (docs/scaling.md).
workers = server_value("workers") or 1
# gthread (a pool of request threads; WebSockets are handed off to threads
# of their own after the handshake and do not hold one of these), plus: the
# worker's accepting thread answers health_path/ready_path itself, so probes
# never wait for a request thread, and WebSocket handshakes run in a pool of
# SERVER_HANDSHAKE_THREADS threads of their own (server/gunicorn_worker.py).
# "gthread" here gives gunicorn's own worker, which works too.
worker_class = "server.gunicorn_worker.ThreadWorker"
threads = server_value("threads")
# Most connections the worker keeps at once (long-polls and kept-alive
# HTTP; handed-off WebSockets are not counted by gunicorn).
worker_connections = server_value("max_connections") or 1000

# -- Binding -----------------------------------------------------------------
bind = [server_value("bind")]
backlog = 2048

# -- TLS (docs/tls.md) -------------------------------------------------------
# HTTPS when SERVER_CERTFILE is set: Mozilla's profile SERVER_TLS_PROFILE
# (intermediate: TLS 1.2 + 1.3, ECDHE with AES-GCM/ChaCha20; modern: TLS 1.3
# only) through the ssl_context hook, which also serves a renewed
# certificate without a restart.  WebSockets over gunicorn's own TLS are
# served in the request thread (one thread each, not handed off): behind
# many WebSocket clients, terminate TLS in nginx instead (docs/nginx.md).
certfile = server_value("certfile")
keyfile = server_value("keyfile")
ca_certs = server_value("ca_certs")
ssl_context = GunicornSSLContext(profile=server_value("tls_profile"))

# -- Timeouts fit for long-lived connections --------------------------------
# `timeout` is the worker heartbeat, not a request limit: the gthread
# worker's main loop notifies the arbiter every second whatever its request
# threads are doing (gunicorn/workers/gthread.py, run()), so a long-poll or
# a WebSocket never trips it; only a hung worker does.
timeout = 30
# Kept-alive HTTP connections between polls; a polling client reconnects
# within a ping interval, so a few seconds is plenty.
keepalive = 5
# SIGTERM: how long the worker may take to finish in-flight requests before
# it is killed.  The hooks below close the Socket.IO clients first.
graceful_timeout = max(1, round(server_value("graceful_timeout")))

# -- Request limits ----------------------------------------------------------
# Large cookies (several session cookies behind one domain easily pass 4 KB)
# must not be refused: allow header fields up to 16 KB and request lines up
# to 8 KB (polling URLs are short; WebSocket handshakes carry their own).
limit_request_line = 8190
limit_request_field_size = 16384
limit_request_fields = 100

# -- Logging -----------------------------------------------------------------
errorlog = "-"
accesslog = None  # set to "-" to log every request (polling makes many)
loglevel = "info"

# -- Control -----------------------------------------------------------------
# gunicorn >= 25.1 opens a control socket at a per-user default path; two
# instances on one host would fight over it.  Ignored by older versions.
control_socket_disable = True


# -- Start-up checks ---------------------------------------------------------
def on_starting(server):
    """Refuse to start on TLS files that cannot work or leak the key.

    Runs once in the master before it binds: a missing, unreadable or
    mismatched certificate or key, an expired certificate or a
    world-readable key stops gunicorn here with one line naming the file
    and the fix, instead of every worker failing on its first connection.
    """
    try:
        check_gunicorn_config(server.cfg)
    except ConfigurationError as exc:
        server.log.error("%s", exc)
        sys.exit(1)


# -- Worker count, for the app -----------------------------------------------
def post_fork(server, worker):
    """Tell the app how many workers run (``-w N`` on the command line wins).

    The app reads SERVER_WORKERS when it is loaded, in the worker just after
    this hook (so not with --preload): more than one worker means WebSocket
    only and a required message queue (server/workers.py).
    """
    os.environ["SERVER_WORKERS"] = str(server.cfg.workers)


# -- Graceful shutdown hooks -------------------------------------------------
def post_worker_init(worker):
    """On SIGTERM, close the clients first, then let gunicorn stop gracefully.

    gunicorn's gthread worker waits for in-flight requests before it exits,
    and a long-poll is in flight for up to ping_interval (25 s): closing the
    Socket.IO sessions first answers those polls at once and sends every
    WebSocket its close frame while the worker still runs.
    """
    close_first_on_sigterm(worker)


def worker_exit(server, worker):
    """Worker leaving: every client closed properly before the process ends.

    WebSockets get a close frame (1001 going away) and polling sessions an
    Engine.IO close, so clients reconnect at once (to the restarted server)
    instead of waiting for a ping timeout.  Runs in the worker process,
    where the app lives.
    """
    close_at_worker_exit(worker)


def worker_int(worker):
    """SIGINT / SIGQUIT (quick shutdown, Ctrl-C): the same, bounded to one second."""
    close_at_worker_exit(worker, reason="server interrupted", timeout=1.0)


def on_exit(server):
    """Master exiting: the worker has already closed its clients."""
    server.log.info("server: all Socket.IO clients were closed by the worker")
