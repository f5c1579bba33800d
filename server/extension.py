"""The ``SocketIO`` extension: Flask-SocketIO 5.x's API on native threads."""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import flask
from flask.ctx import RequestContext
from flask.sessions import SessionMixin
from socketio import WSGIApp

from . import handlers as _h
from . import ops, security
from . import settings as _settings
from .cpu import ProcessPool, apply_switch_interval
from .errors import ConfigurationError, ConnectionRefusedError
from .namespace import Namespace
from .queues import make_client_manager
from .room_index import IndexedManager
from .security_cookies import apply_session_defaults
from .security_sessions import report_sessions
from .sio import SocketIOServer
from .workers import WorkerGuard, apply_worker_mode, worker_count

log = logging.getLogger("server")

_SCOPES = ("extension", "socketio", "security", "ops")


class _SocketIOMiddleware(WSGIApp):
    """Routes ``/socket.io`` to the Socket.IO server, the rest to Flask."""

    def __init__(self, socketio_server: SocketIOServer, flask_app: flask.Flask,
                 socketio_path: str) -> None:
        self.flask_app = flask_app
        super().__init__(socketio_server, flask_app.wsgi_app, socketio_path=socketio_path)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        # Not python-engineio's __call__, which under gunicorn defines a class
        # per request (an eventlet shim stored as environ['eventlet.input']).
        # python-socketio keeps a session's environ for the session's life, so
        # each closed WebSocket left a class, 7 objects in a cycle that only a
        # full collection frees: ~230 ms at once after 2,000 clients left.
        environ = environ.copy()
        environ["flask.app"] = self.flask_app
        path = environ.get("PATH_INFO")
        if path is not None and path.startswith(self.engineio_path):
            return self.engineio_app.handle_request(environ, start_response)
        return self.wsgi_app(environ, start_response)


class _EventContext(RequestContext):
    """The request context of one Socket.IO event.

    The connection's URL is always the Socket.IO endpoint, which no Flask
    route serves: matching it against the URL map on every event only ever
    produced a 404 nobody reads, and cost a sixth of a round-trip.  Flask
    documents ``match_request`` as the hook to override; ``url_for`` still
    works (the URL adapter is built as usual).
    """

    def match_request(self) -> None:
        return None


class _ManagedSession(dict, SessionMixin):
    """The per-connection copy of the Flask session (``manage_session=True``)."""


class SocketIO:
    """Create a Flask-SocketIO server, running on native threads.

    :param app: The flask application instance. If the application instance
                isn't known at the time this class is instantiated, then call
                ``socketio.init_app(app)`` once the application instance is
                available.
    :param manage_session: If set to ``True``, this extension manages the user
                           session for Socket.IO events. If set to ``False``,
                           Flask's own session management is used. When using
                           Flask's cookie based sessions it is recommended that
                           you leave this set to the default of ``True``. When
                           using server-side sessions, a ``False`` setting
                           enables sharing the user session between HTTP routes
                           and Socket.IO events.
    :param message_queue: A connection URL for a message queue service the
                          server can use for multi-process communication. A
                          message queue is not required when using a single
                          server process.
    :param channel: The channel name, when using a message queue. If a channel
                    isn't specified, a default channel will be used. If
                    multiple clusters of SocketIO processes need to use the
                    same message queue without interfering with each other,
                    then each cluster should use a different channel.
    :param path: The path where the Socket.IO server is exposed. Defaults to
                 ``'socket.io'``. Leave this as is unless you know what you are
                 doing.
    :param resource: Alias to ``path``.
    :param kwargs: Socket.IO and Engine.IO server options (``cors_allowed_origins``,
                   ``ping_interval``, ``ping_timeout``, ``max_http_buffer_size``,
                   ``cookie``, ``always_connect``, ``namespaces``, ``transports``…).
                   ``async_mode`` may only be ``'threading'``. An unknown option
                   raises :class:`server.errors.ConfigurationError` with a hint.

    The full list of options, with their environment variables, is in
    ``docs/settings.md``.
    """

    reason = SocketIOServer.reason

    def __init__(self, app: flask.Flask | None = None, **kwargs: Any) -> None:
        self.server: SocketIOServer | None = None
        self.server_options: dict[str, Any] = {}
        self.wsgi_server: Any = None
        self.handlers: list[tuple[str, Callable, str]] = []
        self.namespace_handlers: list[Namespace] = []
        self.exception_handlers: dict[str, Callable] = {}
        self.default_exception_handler: Callable | None = None
        self.manage_session = True
        self.async_mode = "threading"
        self.sockio_mw: _SocketIOMiddleware | None = None
        self.ops_mw: Any = None
        self._shut_down = False
        self.process_pool: ProcessPool | None = None  # created by init_app (server/cpu.py)
        # validate now, so a typo fails where it was written
        _settings.resolve(kwargs, scopes=_SCOPES, environ={})
        if app is not None or "message_queue" in kwargs:
            self.init_app(app, **kwargs)
        else:
            self.server_options.update(kwargs)

    def init_app(self, app: flask.Flask | None, **kwargs: Any) -> None:
        """Attach this extension to ``app``; options given here win over the
        constructor's.  ``init_app(None, message_queue=url)`` makes a
        write-only emitter for a process with no web server."""
        if app is not None:
            if not hasattr(app, "extensions"):  # pragma: no cover - very old Flask
                app.extensions = {}
            app.extensions["socketio"] = self
            # SameSite=Lax, Secure over HTTPS, unless the app chose (server/security_cookies.py)
            apply_session_defaults(app)
        options = _settings.resolve({**self.server_options, **kwargs}, scopes=_SCOPES)
        # several worker processes: WebSocket only, queue required (server/workers.py)
        workers = worker_count() if app is not None else 1
        apply_worker_mode(options, workers)
        self.server_options = dict(options)
        policy_options = dict(options)  # the security policy reads several scopes
        for name in [n for n in options if _settings.BY_NAME[n].scope in ("security", "ops")]:
            del options[name]
        policy_on = policy_options.get("security_policy", True)
        if policy_on:
            # the policy checks origins before Engine.IO sees the request
            options["cors_allowed_origins"] = []
        self.manage_session = options.pop("manage_session", self.manage_session)
        # CPU work in other processes, the switch interval (server/cpu.py)
        if self.process_pool is not None:
            self.process_pool.shutdown()
        self.process_pool = ProcessPool(options.pop("process_pool_size", None))
        switch = options.pop("switch_interval", _settings.BY_NAME["switch_interval"].default)
        if app is not None:  # a write-only emitter (a job worker) keeps its interpreter's
            apply_switch_interval(switch)
        options.pop("async_mode", None)
        channel = options.pop("channel", "flask-socketio")
        url = options.pop("message_queue", None)
        if options.get("client_manager") is None:
            options.pop("client_manager", None)
            if url:
                options["client_manager"] = make_client_manager(
                    url, channel=channel, write_only=app is None)
            else:
                # finds a client's rooms without scanning all of them (server/room_index.py)
                options["client_manager"] = IndexedManager()
        if options.get("json") is flask.json:
            options["json"] = _FlaskSafeJSON(app)
        resource = options.pop("path", None) or options.pop("resource", None) or "socket.io"
        options.pop("resource", None)
        resource = resource.strip("/")
        self.server = SocketIOServer(**options)
        self._shut_down = False
        self.async_mode = self.server.async_mode
        for message, handler, namespace in self.handlers:
            self.server.on(message, handler, namespace=namespace)
        for namespace_handler in self.namespace_handlers:
            self.server.register_namespace(namespace_handler)
        if app is not None:
            self.sockio_mw = _SocketIOMiddleware(self.server, app, socketio_path=resource)
            wsgi: Any = self.sockio_mw
            if workers > 1 or url:
                # explains requests that belong to another process (server/workers.py)
                wsgi = WorkerGuard(wsgi, self.server.eio, resource, workers)
            if policy_on:
                # outermost: its checks come first and its headers go on every answer
                policy_options.setdefault("path", resource)
                wsgi = security.wrap(wsgi, policy_options, logging.getLogger("server.security"))
                report_sessions(self.server.eio, wsgi)
            # outermost: health answers never wait behind the policy or Flask
            self.ops_mw = ops.wrap(wsgi, self, self.server_options,
                                   logging.getLogger("server.ops"))
            app.wsgi_app = self.ops_mw

    # -- registration -----------------------------------------------------------
    def on(self, message: str, namespace: str | None = None) -> Callable:
        """Decorator to register a SocketIO event handler.

        This decorator must be applied to SocketIO event handlers. Example::

            @socketio.on('my event', namespace='/chat')
            def handle_my_custom_event(json):
                print('received json: ' + str(json))

        :param message: The name of the event. This is normally a user defined
                        string, but a few event names are already defined. Use
                        ``'message'`` to define a handler that takes a string
                        payload, ``'json'`` to define a handler that takes a
                        JSON blob payload, ``'connect'`` or ``'disconnect'``
                        to create handlers for connection and disconnection
                        events, or ``'*'`` for a catch-all handler, which
                        receives the event name as first argument.
        :param namespace: The namespace on which the handler is to be
                          registered. Defaults to the global namespace. Use
                          ``'*'`` for all namespaces; the handler then receives
                          the namespace as an argument (after the event name
                          for a catch-all event).
        """
        namespace = namespace or "/"

        def decorator(handler: Callable) -> Callable:
            if not callable(handler):
                raise ConfigurationError(
                    f"the handler for event {message!r} must be callable, got {handler!r}")
            prefix_len = (message == "*") + (namespace == "*")
            limit = _h.max_positional(handler)

            @wraps(handler)
            def _handler(*raw: Any) -> Any:
                call = _h.unpack(message, namespace, raw)
                args = _h.fit_arguments(handler, call.event, call.args, prefix_len, limit)
                return self._handle_event(handler, call.event, call.namespace, call.sid,
                                          *args, _fitted=True)

            if self.server:
                self.server.on(message, _handler, namespace=namespace)
            else:
                self.handlers.append((message, _handler, namespace))
            return handler

        return decorator

    def on_error(self, namespace: str | None = None) -> Callable:
        """Decorator to define a custom error handler for SocketIO events.

        This decorator can be applied to a function that acts as an error
        handler for a namespace. This handler will be invoked when a SocketIO
        event handler raises an exception. The handler function must accept one
        argument, which is the exception raised. Example::

            @socketio.on_error(namespace='/chat')
            def chat_error_handler(e):
                print('An error has occurred: ' + str(e))

        :param namespace: The namespace for which to register the error
                          handler. Defaults to the global namespace.
        """
        namespace = namespace or "/"

        def decorator(exception_handler: Callable) -> Callable:
            if not callable(exception_handler):
                raise ValueError("exception_handler must be callable")
            self.exception_handlers[namespace] = exception_handler
            return exception_handler

        return decorator

    def on_error_default(self, exception_handler: Callable) -> Callable:
        """Decorator to define a default error handler for SocketIO events.

        This decorator can be applied to a function that acts as a default
        error handler for any namespaces that do not have a specific handler.
        Example::

            @socketio.on_error_default
            def error_handler(e):
                print('An error has occurred: ' + str(e))
        """
        if not callable(exception_handler):
            raise ValueError("exception_handler must be callable")
        self.default_exception_handler = exception_handler
        return exception_handler

    def on_event(self, message: str, handler: Callable, namespace: str | None = None) -> None:
        """Register a SocketIO event handler.

        ``on_event`` is the non-decorator version of ``'on'``. Example::

            def on_foo_event(json):
                print('received json: ' + str(json))

            socketio.on_event('my event', on_foo_event, namespace='/chat')

        :param message: The name of the event.
        :param handler: The function that handles the event.
        :param namespace: The namespace on which the handler is to be
                          registered. Defaults to the global namespace.
        """
        self.on(message, namespace=namespace)(handler)

    def event(self, *args: Any, **kwargs: Any) -> Callable:
        """Decorator to register an event handler named after the function.

        Example::

            @socketio.event
            def my_event(data):
                print('Received data: ', data)

        With a namespace: ``@socketio.event(namespace='/chat')``.
        """
        if len(args) == 1 and len(kwargs) == 0 and callable(args[0]):
            return self.on(args[0].__name__)(args[0])

        def set_handler(handler: Callable) -> Callable:
            return self.on(handler.__name__, *args, **kwargs)(handler)

        return set_handler

    def on_namespace(self, namespace_handler: Namespace) -> None:
        """Register a class-based namespace (a :class:`server.Namespace`)."""
        if not isinstance(namespace_handler, Namespace):
            raise ValueError("Not a namespace instance.")
        namespace_handler._set_socketio(self)
        if self.server:
            self.server.register_namespace(namespace_handler)
        else:
            self.namespace_handlers.append(namespace_handler)

    # -- sending ------------------------------------------------------------------
    def emit(self, event: str, *args: Any, **kwargs: Any) -> None:
        """Emit a server generated SocketIO event.

        This function emits a SocketIO event to one or more connected clients.
        A JSON blob can be attached to the event as payload. This function can
        be used outside of a SocketIO event context, so it is appropriate to use
        when the server is the originator of an event, outside of any client
        context, such as in a regular HTTP request handler or a background task,
        from any thread. Example::

            @app.route('/ping')
            def ping():
                socketio.emit('ping event', {'data': 42}, namespace='/chat')

        :param event: The name of the user event to emit.
        :param args: A dictionary with the JSON data to send as payload; several
                     arguments are sent as several event arguments.
        :param namespace: The namespace under which the message is to be sent.
                          Defaults to the global namespace.
        :param to: Send the message to all the users in the given room, or to
                   the user with the given session ID, or to a list of rooms or
                   sids. If this parameter is not included, the event is sent
                   to all connected users.
        :param include_self: ``True`` to include the sender when broadcasting
                             or addressing a room, or ``False`` to send to
                             everyone but the sender.
        :param skip_sid: The session id of a client to ignore when broadcasting
                         or addressing a room (or a list of them).
        :param callback: If given, this function will be called to acknowledge
                         that the client has received the message. The
                         arguments that will be passed to the function are
                         those provided by the client.
        """
        server = self._require_server("emit")
        namespace = kwargs.pop("namespace", None) or "/"
        to = kwargs.pop("to", None)
        room = kwargs.pop("room", None)
        to = to if to is not None else room
        include_self = kwargs.pop("include_self", True)
        skip_sid = kwargs.pop("skip_sid", None)
        if not include_self and not skip_sid:
            skip_sid = _current_sid("emit(include_self=False)")
        callback = kwargs.pop("callback", None)
        ignore_queue = kwargs.pop("ignore_queue", False)
        # Flask-SocketIO 4 code passes broadcast=True; without `to` a server
        # emit is a broadcast anyway
        kwargs.pop("broadcast", None)
        _reject_unknown("emit", kwargs)
        if callback is not None:
            callback = self._wrap_callback(callback, namespace)
        server.emit(event, _payload(args), namespace=namespace, to=to,
                    skip_sid=skip_sid, callback=callback, ignore_queue=ignore_queue)

    def call(self, event: str, *args: Any, **kwargs: Any) -> Any:
        """Emit a SocketIO event and wait for the response.

        This method issues an emit with a callback and waits for the callback
        to be invoked by the client before returning. If the callback isn't
        invoked before the timeout, then a ``TimeoutError`` exception is raised.

        :param event: The name of the user event to emit.
        :param args: A dictionary with the JSON data to send as payload.
        :param namespace: The namespace under which the message is to be sent.
                          Defaults to the global namespace.
        :param to: The session ID of the recipient client.
        :param timeout: The waiting timeout in seconds (default 60).
        """
        server = self._require_server("call")
        namespace = kwargs.pop("namespace", None) or "/"
        to = kwargs.pop("to", None)
        room = kwargs.pop("room", None)
        to = to if to is not None else room
        timeout = kwargs.pop("timeout", 60)
        ignore_queue = kwargs.pop("ignore_queue", False)
        _reject_unknown("call", kwargs)
        return server.call(event, _payload(args), to=to, namespace=namespace,
                           timeout=timeout, ignore_queue=ignore_queue)

    def send(self, data: Any, json: bool = False, namespace: str | None = None,
             to: Any = None, callback: Callable | None = None, include_self: bool = True,
             skip_sid: Any = None, **kwargs: Any) -> None:
        """Send a server-generated SocketIO message.

        This function sends a simple SocketIO message to one or more connected
        clients. The message can be a string or a JSON blob. This is a simpler
        version of ``emit()``, which should be preferred.

        :param data: The message to send, either a string or a JSON blob.
        :param json: ``True`` if ``message`` is a JSON blob, ``False``
                     otherwise.
        :param namespace: The namespace under which the message is to be sent.
        :param to: Send the message to the given room or sid (or a list of them).
                   If not given, the message is sent to all connected users.
        :param include_self: ``False`` to skip the sender.
        :param skip_sid: A session id (or list) to skip.
        :param callback: If given, called with the client's acknowledgement.
        """
        room = kwargs.pop("room", None)
        to = to if to is not None else room
        if not include_self and not skip_sid:
            skip_sid = _current_sid("send(include_self=False)")
        self.emit("json" if json else "message", data, namespace=namespace, to=to,
                  skip_sid=skip_sid, callback=callback, **kwargs)

    def close_room(self, room: str, namespace: str | None = None) -> None:
        """Close a room.

        This function removes any users that are in the given room and then
        deletes the room from the server. This function can be used outside
        of a SocketIO event context.
        """
        self._require_server("close_room").close_room(room, namespace or "/")

    # -- python-socketio extras Flask-SocketIO hides ------------------------------
    def instrument(self, auth: Any = None, mode: str = "development",
                   read_only: bool = False, server_id: str | None = None,
                   namespace: str = "/admin", server_stats_interval: int = 2) -> Any:
        """Instrument the server for the Socket.IO Admin UI (see python-socketio)."""
        return self._require_server("instrument").instrument(
            auth=auth, mode=mode, read_only=read_only, server_id=server_id,
            namespace=namespace, server_stats_interval=server_stats_interval)

    def get_session(self, sid: str, namespace: str | None = None) -> dict:
        """The python-socketio user session of a connection (a dict)."""
        return self._require_server("get_session").get_session(sid, namespace=namespace)

    def save_session(self, sid: str, session: dict, namespace: str | None = None) -> None:
        """Store the python-socketio user session of a connection."""
        self._require_server("save_session").save_session(sid, session, namespace=namespace)

    def session(self, sid: str, namespace: str | None = None) -> Any:
        """Context manager giving read/write access to a connection's session."""
        return self._require_server("session").session(sid, namespace=namespace)

    def participants(self, room: str, namespace: str | None = None) -> list[str]:
        """The session ids of the clients in ``room`` (on this process)."""
        return self._require_server("participants").participants(room, namespace or "/")

    def rooms(self, sid: str, namespace: str | None = None) -> list[str]:
        """The rooms a client is in (its own sid room included)."""
        return self._require_server("rooms").rooms(sid, namespace=namespace or "/")

    # -- running ------------------------------------------------------------------
    def run(self, app: flask.Flask, host: str | None = None, port: int | None = None,
            **kwargs: Any) -> None:
        """Run the SocketIO web server in production.

        Embedded gunicorn (gthread) where it is installed, waitress elsewhere;
        the Werkzeug development server only with ``debug=True`` or
        ``server='werkzeug'``. WebSocket works on each. Must be called from the
        main thread; blocks until the server stops.

        :param app: The Flask application instance.
        :param host: The hostname or IP address for the server to listen on.
                     Defaults to 127.0.0.1.
        :param port: The port number for the server to listen on. Defaults to
                     5000.
        :param debug: ``True`` to start the server in debug mode (Werkzeug,
                      with the reloader), ``False`` otherwise.
        :param server: ``'gunicorn'``, ``'waitress'`` or ``'werkzeug'``.
        :param kwargs: Further options of the chosen server (``threads``,
                       ``certfile``, ``keyfile``, ``log_output``…); unknown
                       ones raise with a hint.
        """
        from . import runner

        runner.run(self, app, host=host, port=port, **kwargs)

    def stop(self) -> None:
        """Stop a running SocketIO web server.

        This method must be called from a HTTP or SocketIO handler function,
        or from another thread.
        """
        from . import runner

        runner.stop(self)

    def shutdown(self, reason: str = "server shutting down", timeout: float = 5.0) -> None:
        """Close every connection so that clients reconnect (graceful stop).

        WebSocket clients get a close frame (1001, going away); polling clients
        an Engine.IO close. Neither is a Socket.IO ``disconnect`` packet, which
        would tell the official client not to reconnect.
        """
        if self.server is None or self._shut_down:
            return  # idempotent: several hooks may ask on the way out
        self._shut_down = True
        if isinstance(self.ops_mw, ops.OpsMiddleware):
            self.ops_mw.draining = reason  # /readyz: load balancers stop sending clients
        eio = self.server.eio
        # WebSockets first, so that they get 1001 (going away) rather than the
        # 1000 an Engine.IO close would make their writer send
        eio.websockets.close_all(code=1001, reason=reason, timeout=timeout)
        for socket in list(eio.sockets.values()):
            try:
                socket.close(wait=False, abort=False,
                             reason=eio.reason.SERVER_DISCONNECT)
            except Exception:  # a socket closing on its own meanwhile
                log.debug("closing %s failed", socket.sid, exc_info=True)
        self.server.shutdown()
        if self.process_pool is not None:
            self.process_pool.shutdown()  # cancels jobs not started (server/cpu.py)

    def start_background_task(self, target: Callable, *args: Any, **kwargs: Any) -> Any:
        """Start a background task in a daemon thread.

        :param target: the target function to execute.
        :param args: arguments to pass to the function.
        :param kwargs: keyword arguments to pass to the function.

        Returns an object compatible with the ``Thread`` class in the Python
        standard library. The ``start()`` method on this object is already
        called by this function.
        """
        return self._require_server("start_background_task").start_background_task(
            target, *args, **kwargs)

    def run_in_process(self, fn: Callable, *args: Any,
                       progress: Callable[[Any], Any] | None = None, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` in a worker process and return its result.

        Blocks the calling handler thread (not the server) until the job ends;
        other cores do the work.  ``fn`` must be a module-level function and
        the arguments picklable, else ``TypeError`` says so.  If ``fn`` raises,
        the same exception is raised here, its ``__cause__`` holding the remote
        traceback.  With ``progress``, ``fn`` also receives ``report=``, a
        callable that sends a value back to this process, where ``progress`` is
        called with it, in order, on a thread of the pool (not in the handler's
        context: emit with ``socketio.emit(..., to=sid, namespace=ns)``).  All
        progress calls finish before the result is returned.  The pool has
        ``process_pool_size`` processes (docs/cpu-heavy.md).
        """
        return self.submit_process(fn, *args, progress=progress, **kwargs).result()

    def submit_process(self, fn: Callable, *args: Any,
                       progress: Callable[[Any], Any] | None = None,
                       **kwargs: Any) -> Any:
        """Start ``fn(*args, **kwargs)`` in a worker process without waiting.

        Returns a ``concurrent.futures.Future``; see :meth:`run_in_process`.
        """
        if self.process_pool is None:
            self._require_server("submit_process")
        assert self.process_pool is not None  # set by init_app with the server
        return self.process_pool.submit(fn, *args, progress=progress, **kwargs)

    def sleep(self, seconds: float = 0) -> None:
        """Sleep for the requested amount of time (``time.sleep`` on threads)."""
        return self._require_server("sleep").sleep(seconds)

    def test_client(self, app: flask.Flask, namespace: str | None = None,
                    query_string: str | None = None, headers: dict | None = None,
                    auth: Any = None, flask_test_client: Any = None) -> Any:
        """The Socket.IO test client, which drives this server in memory.

        :param app: The Flask application instance.
        :param namespace: The namespace for the client. If not provided, the
                          client connects to the server on the global
                          namespace.
        :param query_string: A string with custom query string arguments.
        :param headers: A dictionary with custom HTTP headers.
        :param auth: Optional authentication data, given as a dictionary.
        :param flask_test_client: The instance of the Flask test client
                                  currently in use. Passing the Flask test
                                  client is optional, but is necessary if you
                                  want the Flask user session and any other
                                  cookies set in HTTP routes accessible from
                                  Socket.IO events.
        """
        from .testing import SocketIOTestClient

        return SocketIOTestClient(app, self, namespace=namespace,
                                  query_string=query_string, headers=headers, auth=auth,
                                  flask_test_client=flask_test_client)

    # -- internals ---------------------------------------------------------------
    def _require_server(self, what: str) -> SocketIOServer:
        if self.server is None:
            raise RuntimeError(
                f"SocketIO.{what}() needs the server: call socketio.init_app(app) "
                f"first (or pass the app to SocketIO())")
        return self.server

    def _wrap_callback(self, callback: Callable, namespace: str) -> Callable:
        """Run an ack callback in the emitting client's request context."""
        sid = None
        original_namespace = namespace
        if flask.has_request_context():
            sid = getattr(flask.request, "sid", None)
            original_namespace = getattr(flask.request, "namespace", namespace)
        if not sid:
            return callback
        limit = _h.max_positional(callback)

        def _callback_wrapper(*args: Any) -> Any:
            if limit is not None:
                args = args[:limit]
            return self._handle_event(callback, None, original_namespace, sid, *args,
                                      _fitted=True)

        return _callback_wrapper

    def _handle_event(self, handler: Callable, message: str | None, namespace: str,
                      sid: str, *args: Any, _fitted: bool = False) -> Any:
        """Run ``handler`` in the connection's app and request context."""
        server = self._require_server("_handle_event")
        environ = server.get_environ(sid, namespace=namespace)
        if not environ:
            # no record of this client (it is gone): ignore the event
            return "", 400
        app = environ["flask.app"]
        if self.manage_session and "saved_session" not in environ:
            with _EventContext(app, environ):
                environ["saved_session"] = _ManagedSession(flask.session)
        session = environ["saved_session"] if self.manage_session else None
        with _EventContext(app, environ, session=session):
            request = flask.request
            request.sid = sid
            request.namespace = namespace
            request.event = {"message": message, "args": args}
            try:
                ret = handler(*args)
            except ConnectionRefusedError:
                raise  # python-socketio turns it into the client's connect_error
            except Exception:
                err_handler = self.exception_handlers.get(namespace,
                                                          self.default_exception_handler)
                if err_handler is None:
                    raise
                return err_handler(sys.exc_info()[1])
            if not self.manage_session:
                # Flask owns the session: save what the handler changed
                session_obj = flask.session._get_current_object()
                if getattr(session_obj, "modified", True):
                    resp = app.response_class()
                    app.session_interface.save_session(app, session_obj, resp)
            return ret


class _FlaskSafeJSON:
    """Flask's JSON provider, always called inside the app context."""

    def __init__(self, app: flask.Flask | None) -> None:
        self.app = app

    def dumps(self, *args: Any, **kwargs: Any) -> str:
        app = self.app or flask.current_app
        with app.app_context():
            return app.json.dumps(*args, **kwargs)

    def loads(self, *args: Any, **kwargs: Any) -> Any:
        app = self.app or flask.current_app
        with app.app_context():
            return app.json.loads(*args, **kwargs)


def _payload(args: tuple) -> Any:
    """Flask-SocketIO's ``*args`` → python-socketio's single ``data``."""
    if not args:
        return None
    if len(args) == 1:
        return args[0]
    return tuple(args)


def _current_sid(what: str) -> str:
    if flask.has_request_context():
        sid = getattr(flask.request, "sid", None)
        if sid:
            return sid
    raise RuntimeError(
        f"{what} needs to know the sender: call it from a Socket.IO event handler, "
        f"or pass skip_sid=<sid> explicitly")


def _reject_unknown(what: str, kwargs: dict) -> None:
    if kwargs:
        name = next(iter(kwargs))
        known = ("namespace", "to", "room", "include_self", "skip_sid", "callback",
                 "ignore_queue", "timeout")
        raise TypeError(f"{what}() got an unexpected keyword argument {name!r}."
                        + _settings.did_you_mean(name, known))
