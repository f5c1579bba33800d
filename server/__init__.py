"""Flask-SocketIO's API on native threads.

Change ``from flask_socketio import …`` into ``from server import …``.
"""
from .context import call, close_room, disconnect, emit, join_room, leave_room, rooms, send
from .errors import ConfigurationError, ConnectionRefusedError, TimeoutError
from .extension import SocketIO
from .namespace import Namespace
from .testing import SocketIOTestClient

__version__ = "0.1.0"

__all__ = [
    "SocketIO",
    "Namespace",
    "SocketIOTestClient",
    "emit",
    "send",
    "call",
    "join_room",
    "leave_room",
    "close_room",
    "rooms",
    "disconnect",
    "ConnectionRefusedError",
    "TimeoutError",
    "ConfigurationError",
]
