"""Class-based namespaces, as in Flask-SocketIO."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flask
import socketio

from . import handlers as _h

if TYPE_CHECKING:  # pragma: no cover
    from .extension import SocketIO


class Namespace(socketio.Namespace):
    """Base class for class-based namespaces.

    Event handlers are methods named ``on_<event>``: ``on_connect``,
    ``on_disconnect``, ``on_my_event``… They run in the connection's app and
    request context exactly like handlers registered with ``@socketio.on``.

    ``Namespace('*')`` handles every namespace that has no handler of its own;
    its methods receive the namespace as their first argument (as function
    handlers registered with ``namespace='*'`` do), and ``request.namespace``
    holds it too.

    :param namespace: The Socket.IO namespace to be used with all the event
                      handlers defined in this class. If this argument is
                      omitted, the default namespace is used.
    """

    def __init__(self, namespace: str | None = None) -> None:
        super().__init__(namespace)
        self.socketio: SocketIO | None = None
        self._limits: dict[str, int | None] = {}

    def _set_socketio(self, socketio: SocketIO) -> None:
        self.socketio = socketio

    def trigger_event(self, event: str, *args: Any) -> Any:
        """Dispatch an event to the proper handler method.

        In the most common usage, this method is not overloaded by subclasses,
        as it performs the routing of events to methods. However, this method
        can be overridden if special dispatching rules are needed, or if having
        a single method that catches all events is desired.
        """
        handler_name = "on_" + (event or "")
        handler: Callable | None = getattr(self, handler_name, None)
        if handler is None:
            return None
        if self.socketio is None:
            raise RuntimeError(
                f"namespace {self.namespace!r} is not registered: use "
                f"socketio.on_namespace(instance)")
        call = _h.unpack(event, self.namespace, args)
        if handler_name not in self._limits:
            self._limits[handler_name] = _h.max_positional(handler)
        prefix_len = 1 if self.namespace == "*" else 0
        fitted = _h.fit_arguments(handler, event, call.args, prefix_len,
                                  self._limits[handler_name])
        return self.socketio._handle_event(handler, event, call.namespace, call.sid,
                                           *fitted, _fitted=True)

    def _current_namespace(self, namespace: str | None) -> str:
        if namespace:
            return namespace
        if self.namespace == "*":
            # a catch-all namespace answers on the namespace the event came from
            return getattr(flask.request, "namespace", "/")
        return self.namespace

    def emit(self, event: str, data: Any = None, room: Any = None, include_self: bool = True,
             namespace: str | None = None, callback: Callable | None = None,
             to: Any = None, skip_sid: Any = None) -> None:
        """Emit a custom event to one or more connected clients."""
        return self._socketio().emit(event, data, to=to if to is not None else room,
                                     include_self=include_self, skip_sid=skip_sid,
                                     namespace=self._current_namespace(namespace),
                                     callback=callback)

    def send(self, data: Any, room: Any = None, include_self: bool = True,
             namespace: str | None = None, callback: Callable | None = None,
             to: Any = None, skip_sid: Any = None) -> None:
        """Send a message to one or more connected clients."""
        return self._socketio().send(data, to=to if to is not None else room,
                                     include_self=include_self, skip_sid=skip_sid,
                                     namespace=self._current_namespace(namespace),
                                     callback=callback)

    def close_room(self, room: str, namespace: str | None = None) -> None:
        """Close a room."""
        return self._socketio().close_room(room=room,
                                           namespace=self._current_namespace(namespace))

    def _socketio(self) -> SocketIO:
        if self.socketio is None:
            raise RuntimeError("namespace is not registered: use socketio.on_namespace()")
        return self.socketio
