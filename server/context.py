"""Functions for use inside Socket.IO event handlers, as in Flask-SocketIO.

They read the current connection from the request context that the
extension pushes around every handler (``request.sid``,
``request.namespace``), and the extension from ``current_app``.  Outside a
handler, pass ``to=``/``sid=`` and ``namespace=`` explicitly, or use the
methods of the :class:`server.SocketIO` instance instead.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flask

if TYPE_CHECKING:  # pragma: no cover
    from .extension import SocketIO


def _socketio() -> SocketIO:
    if not flask.has_app_context():
        raise RuntimeError(
            "this function needs the Flask app context: call it from a Socket.IO "
            "event handler or an HTTP view, or use the SocketIO instance's methods "
            "(socketio.emit(...)) from other threads")
    try:
        return flask.current_app.extensions["socketio"]
    except KeyError:
        raise RuntimeError(
            "the current Flask app has no SocketIO extension: create "
            "SocketIO(app) or call socketio.init_app(app)") from None


def _from_event(attr: str, what: str) -> Any:
    value = getattr(flask.request, attr, None) if flask.has_request_context() else None
    if value is None:
        raise RuntimeError(
            f"{what} outside a Socket.IO event handler needs an explicit "
            f"{'to=' if attr == 'sid' else 'namespace='} argument (there is no current "
            f"client here)")
    return value


def _server(what: str) -> Any:
    return _socketio()._require_server(what)


def _client(sid: str | None, namespace: str | None, what: str) -> tuple[str, str]:
    """``sid`` and ``namespace``, defaulting to the current event's."""
    return (sid or _from_event("sid", what), namespace or _from_event("namespace", what))


def _recipient(kwargs: dict, what: str, broadcast: bool = False) -> tuple[Any, str]:
    """Pop ``to``/``room``/``namespace`` from ``kwargs``: (recipient, namespace).

    Without ``to`` (or ``room``) the recipient is the current client, unless
    ``broadcast`` is set, when it is everyone (None).
    """
    namespace = kwargs.pop("namespace", None) or _from_event("namespace", what)
    to = kwargs.pop("to", None)
    room = kwargs.pop("room", None)
    to = to if to is not None else room
    if to is None and not broadcast:
        to = _from_event("sid", what)
    return to, namespace


def emit(event: str, *args: Any, **kwargs: Any) -> None:
    """Emit a SocketIO event.

    This function emits a SocketIO event to one or more connected clients. A
    JSON blob can be attached to the event as payload. This is a function that
    can only be called from a SocketIO event handler, as in obtains some
    information from the current client context. Example::

        @socketio.on('my event')
        def handle_my_custom_event(json):
            emit('my response', {'data': 42})

    :param event: The name of the user event to emit.
    :param args: A dictionary with the JSON data to send as payload.
    :param namespace: The namespace under which the message is to be sent.
                      Defaults to the namespace used by the originating event.
                      A ``'/'`` can be used to explicitly specify the global
                      namespace.
    :param callback: Callback function to invoke with the client's
                     acknowledgement.
    :param broadcast: ``True`` to send the message to all clients, or ``False``
                      to only reply to the sender of the originating event.
    :param to: Send the message to all the users in the given room, or to the
               user with the given session ID (or a list of them). If this
               argument is not set and ``broadcast`` is ``False``, then the
               message is sent only to the originating user.
    :param include_self: ``True`` to include the sender when broadcasting or
                         addressing a room, or ``False`` to send to everyone
                         but the sender.
    :param skip_sid: The session id of a client to ignore when broadcasting
                     or addressing a room (or a list of them).
    :param ignore_queue: Only used when a message queue is configured. If
                         set to ``True``, the event is emitted to the
                         clients directly, without going through the queue.
    """
    to, namespace = _recipient(kwargs, "emit()", kwargs.pop("broadcast", False))
    return _socketio().emit(event, *args, namespace=namespace, to=to, **kwargs)


def send(message: Any, **kwargs: Any) -> None:
    """Send a SocketIO message.

    This function sends a simple SocketIO message to one or more connected
    clients. The message can be a string or a JSON blob. This is a simpler
    version of ``emit()``, which should be preferred. This is a function that
    can only be called from a SocketIO event handler.

    :param message: The message to send, either a string or a JSON blob.
    :param json: ``True`` if ``message`` is a JSON blob, ``False``
                     otherwise.
    :param namespace: The namespace under which the message is to be sent.
                      Defaults to the namespace used by the originating event.
    :param callback: Callback function to invoke with the client's
                     acknowledgement.
    :param broadcast: ``True`` to send the message to all connected clients, or
                      ``False`` to only reply to the sender of the originating
                      event.
    :param to: Send the message to the given room or sid (or a list of them).
    :param include_self: ``True`` to include the sender when broadcasting or
                         addressing a room, or ``False`` to send to everyone
                         but the sender.
    :param skip_sid: The session id of a client to ignore (or a list).
    :param ignore_queue: Only used when a message queue is configured.
    """
    json = kwargs.pop("json", False)
    to, namespace = _recipient(kwargs, "send()", kwargs.pop("broadcast", False))
    return _socketio().send(message, json=json, namespace=namespace, to=to, **kwargs)


def call(event: str, *args: Any, **kwargs: Any) -> Any:
    """Emit a SocketIO event and wait for the response.

    This function issues an emit with a callback and waits for the callback to
    be invoked by the client before returning. If the callback isn't invoked
    before the timeout, then a :class:`server.TimeoutError` is raised. Example::

        @socketio.on('my event')
        def handle_my_custom_event(json):
            client_response = call('my response', {'data': 42})

    :param event: The name of the user event to emit.
    :param args: A dictionary with the JSON data to send as payload.
    :param namespace: The namespace under which the message is to be sent.
                      Defaults to the namespace used by the originating event.
    :param to: The session ID of the recipient client. If this argument is not
               given, the event is sent to the originating client.
    :param timeout: The waiting timeout. If the timeout is reached before the
                    client acknowledges the event, then a ``TimeoutError``
                    exception is raised. The default is 60 seconds.
    :param ignore_queue: Only used when a message queue is configured.
    """
    to, namespace = _recipient(kwargs, "call()")
    return _socketio().call(event, *args, namespace=namespace, to=to, **kwargs)


def join_room(room: str, sid: str | None = None, namespace: str | None = None) -> None:
    """Join a room.

    This function puts the user in a room, under the current namespace. The
    user and the namespace are obtained from the event context. This is a
    function that can only be called from a SocketIO event handler. Example::

        @socketio.on('join')
        def on_join(data):
            username = session['username']
            room = data['room']
            join_room(room)
            send(username + ' has entered the room.', to=room)

    :param room: The name of the room to join.
    :param sid: The session id of the client. If not provided, the client is
                obtained from the request context.
    :param namespace: The namespace for the room. If not provided, the
                      namespace is obtained from the request context.
    """
    sid, namespace = _client(sid, namespace, "join_room()")
    _server("join_room").enter_room(sid, room, namespace=namespace)


def leave_room(room: str, sid: str | None = None, namespace: str | None = None) -> None:
    """Leave a room.

    This function removes the user from a room, under the current namespace.
    The user and the namespace are obtained from the event context.

    :param room: The name of the room to leave.
    :param sid: The session id of the client. If not provided, the client is
                obtained from the request context.
    :param namespace: The namespace for the room. If not provided, the
                      namespace is obtained from the request context.
    """
    sid, namespace = _client(sid, namespace, "leave_room()")
    _server("leave_room").leave_room(sid, room, namespace=namespace)


def close_room(room: str, namespace: str | None = None) -> None:
    """Close a room.

    This function removes any users that are in the given room and then deletes
    the room from the server.

    :param room: The name of the room to close.
    :param namespace: The namespace for the room. If not provided, the
                      namespace is obtained from the request context.
    """
    namespace = namespace or _from_event("namespace", "close_room()")
    _server("close_room").close_room(room, namespace=namespace)


def rooms(sid: str | None = None, namespace: str | None = None) -> list[str]:
    """Return a list of the rooms the client is in.

    This function returns all the rooms the client has entered, including its
    own room, assigned by the Socket.IO server.

    :param sid: The session id of the client. If not provided, the client is
                obtained from the request context.
    :param namespace: The namespace for the room. If not provided, the
                      namespace is obtained from the request context.
    """
    sid, namespace = _client(sid, namespace, "rooms()")
    return _server("rooms").rooms(sid, namespace=namespace)


def disconnect(sid: str | None = None, namespace: str | None = None,
               silent: bool = False) -> None:
    """Disconnect the client.

    This function terminates the connection with the client. As a result of
    this call the client will receive a disconnect event. Example::

        @socketio.on('message')
        def receive_message(msg):
            if is_banned(session['username']):
                disconnect()
            else:
                # ...

    :param sid: The session id of the client. If not provided, the client is
                obtained from the request context.
    :param namespace: The namespace for the room. If not provided, the
                      namespace is obtained from the request context.
    :param silent: this option is deprecated.
    """
    sid, namespace = _client(sid, namespace, "disconnect()")
    return _server("disconnect").disconnect(sid, namespace=namespace)
