# design:
#   The test client drives the real SocketIOServer through its in-memory seam
#   (SocketIOServer.attach_memory_client / feed_memory_packet): packets a test
#   client sends are decoded by the server exactly as if they came off the
#   wire; packets the server sends it are encoded and decoded again before
#   they reach the client's queue, so what a test sees is what a real client
#   would.  The client's events are handled synchronously in the calling
#   thread; packets emitted from other threads (background tasks) land in the
#   queue under the client's lock.
"""``SocketIOTestClient``: Flask-SocketIO's test client, in memory."""
from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

from socketio import packet
from werkzeug.test import EnvironBuilder

from .sio import WireDecoder

if TYPE_CHECKING:  # pragma: no cover
    import flask

    from .extension import SocketIO


class SocketIOTestClient:
    """This class is useful for testing a Flask-SocketIO server.

    It works in a similar way to the Flask Test Client, but adapted to the
    Socket.IO server.

    :param app: The Flask application instance.
    :param socketio: The application's ``SocketIO`` instance.
    :param namespace: The namespace for the client. If not provided, the client
                      connects to the server on the global namespace.
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

    def __init__(self, app: flask.Flask, socketio: SocketIO, namespace: str | None = None,
                 query_string: str | None = None, headers: dict | None = None,
                 auth: Any = None, flask_test_client: Any = None) -> None:
        self.app = app
        self.socketio = socketio
        self.flask_test_client = flask_test_client
        self.eio_sid = uuid.uuid4().hex
        self.callback_counter = 0
        self.connected: dict[str, bool] = {}
        #: the server's answer to a refused connect, by namespace
        self.connect_errors: dict[str, Any] = {}
        self.queue: list[dict] = []
        self.acks: dict[int, dict] = {}
        self._lock = threading.Lock()
        self._decoder = WireDecoder(socketio._require_server("test_client").packet_class)
        self._attached = False
        self.connect(namespace=namespace, query_string=query_string, headers=headers,
                     auth=auth)

    # -- what the server sends us ------------------------------------------------
    def _receive(self, part: Any) -> None:
        with self._lock:
            pkt = self._decoder.feed(part)
            if pkt is None:
                return  # attachments still to come
            namespace = pkt.namespace or "/"
            if pkt.packet_type in (packet.EVENT, packet.BINARY_EVENT):
                name = pkt.data[0]
                args = pkt.data[1] if name in ("message", "json") and len(pkt.data) > 1 \
                    else pkt.data[1:]
                self.queue.append({"name": name, "args": args, "namespace": namespace})
            elif pkt.packet_type in (packet.ACK, packet.BINARY_ACK):
                self.acks[pkt.id] = {"args": pkt.data, "namespace": namespace}
            elif pkt.packet_type == packet.CONNECT:
                self.connected[namespace] = True
            elif pkt.packet_type == packet.DISCONNECT:
                self.connected[namespace] = False
            elif pkt.packet_type == packet.CONNECT_ERROR:
                self.connected[namespace] = False
                self.connect_errors[namespace] = pkt.data

    def _server(self) -> Any:
        return self.socketio._require_server("test_client")

    # -- Flask-SocketIO's test client API -------------------------------------------
    def is_connected(self, namespace: str | None = None) -> bool:
        """Check if a namespace is connected.

        :param namespace: The namespace to check. The global namespace is
                         assumed if this argument is not provided.
        """
        return self.connected.get(namespace or "/", False)

    def connect(self, namespace: str | None = None, query_string: str | None = None,
                headers: dict | None = None, auth: Any = None) -> None:
        """Connect the client.

        :param namespace: The namespace for the client. If not provided, the
                          client connects to the server on the global
                          namespace.
        :param query_string: A string with custom query string arguments.
        :param headers: A dictionary with custom HTTP headers.
        :param auth: Optional authentication data, given as a dictionary.

        Note that it is usually not necessary to explicitly call this method,
        since a connection is automatically established when an instance of
        this class is created. An example where it this method would be useful
        is when the application accepts multiple namespace connections.
        """
        server = self._server()
        namespace = namespace or "/"
        if not self._attached:
            url = "/" + (self.socketio.sockio_mw.engineio_path.strip("/")
                         if self.socketio.sockio_mw else "socket.io")
            if query_string:
                url += query_string if query_string.startswith("?") else "?" + query_string
            environ = EnvironBuilder(url, headers=headers).get_environ()
            environ["flask.app"] = self.app
            if self.flask_test_client is not None:
                # the Flask test client's cookies (its session among them)
                self.flask_test_client._add_cookies_to_wsgi(environ)
            server.attach_memory_client(self.eio_sid, self._receive, environ)
            self._attached = True
        self.connect_errors.pop(namespace, None)
        server.feed_memory_packet(
            self.eio_sid, packet.Packet(packet.CONNECT, auth, namespace=namespace))

    def disconnect(self, namespace: str | None = None) -> None:
        """Disconnect the client.

        :param namespace: The namespace to disconnect. The global namespace is
                         assumed if this argument is not provided.
        """
        if not self.is_connected(namespace):
            raise RuntimeError("not connected")
        namespace = namespace or "/"
        self._server().feed_memory_packet(
            self.eio_sid, packet.Packet(packet.DISCONNECT, namespace=namespace))
        self.connected[namespace] = False
        if not any(self.connected.values()):
            self._server().detach_memory_client(self.eio_sid)
            self._attached = False

    def emit(self, event: str, *args: Any, **kwargs: Any) -> Any:
        """Emit an event to the server.

        :param event: The event name.
        :param *args: The event arguments.
        :param callback: ``True`` if the client requests a callback, ``False``
                         if not. Note that client-side callbacks are not
                         implemented, a callback request will just tell the
                         server to provide the arguments to invoke the
                         callback, but no callback is invoked. Instead, the
                         arguments that the server provided for the callback
                         are returned by this function.
        :param namespace: The namespace of the event. The global namespace is
                          assumed if this argument is not provided.
        """
        namespace = kwargs.pop("namespace", None)
        callback = kwargs.pop("callback", False)
        if kwargs:
            raise TypeError(f"emit() got an unexpected keyword argument {next(iter(kwargs))!r}")
        if not self.is_connected(namespace):
            raise RuntimeError("not connected")
        namespace = namespace or "/"
        ack_id = None
        if callback:
            self.callback_counter += 1
            ack_id = self.callback_counter
        pkt = packet.Packet(packet.EVENT, data=[event, *args], namespace=namespace, id=ack_id)
        self._server().feed_memory_packet(self.eio_sid, pkt)
        if ack_id is not None:
            with self._lock:
                ack = self.acks.pop(ack_id, None)
            if ack is not None:
                return ack["args"][0] if len(ack["args"]) == 1 else ack["args"]
        return None

    def send(self, data: Any, json: bool = False, callback: bool = False,
             namespace: str | None = None) -> Any:
        """Send a text or JSON message to the server.

        :param data: A string, dictionary or list to send to the server.
        :param json: ``True`` to send a JSON message, ``False`` to send a text
                     message.
        :param callback: ``True`` if the client requests a callback, ``False``
                         if not.
        :param namespace: The namespace of the event. The global namespace is
                          assumed if this argument is not provided.
        """
        return self.emit("json" if json else "message", data, callback=callback,
                         namespace=namespace)

    def get_received(self, namespace: str | None = None) -> list[dict]:
        """Return the list of messages received from the server.

        Since this is not a real client, any time the server emits an event,
        the event is simply stored. The test code can invoke this method to
        obtain the list of events that were received since the last call.

        :param namespace: The namespace to get events from. The global
                          namespace is assumed if this argument is not
                          provided.
        """
        if not self.is_connected(namespace):
            raise RuntimeError("not connected")
        namespace = namespace or "/"
        with self._lock:
            mine = [p for p in self.queue if p["namespace"] == namespace]
            self.queue = [p for p in self.queue if p["namespace"] != namespace]
        return mine
