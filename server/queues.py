"""Message queues: a URL → one of python-socketio's client managers.

We use python-socketio's managers as they are (no home-made bus): the URL's
scheme picks the manager, the channel names the queue, and ``write_only``
makes an emitter for a process that serves no clients.
"""
from __future__ import annotations

import importlib
import logging
from typing import Any

from .errors import ConfigurationError
from .queue_log import QueueLog
from .room_index import indexed

#: scheme prefix -> (manager class name, module it needs, the pip extra)
_MANAGERS: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
    (("redis://", "rediss://", "valkey://", "valkeys://", "redis+sentinel://"),
     "RedisManager", "redis", "redis"),
    (("kafka://",), "KafkaManager", "kafka", "kafka"),
    (("zmq+",), "ZmqManager", "zmq", "zmq"),
)


def make_client_manager(url: str, channel: str = "flask-socketio",
                        write_only: bool = False) -> Any:
    """The python-socketio client manager for ``url``."""
    import socketio

    class_name, module, extra = next(
        ((name, mod, ext) for prefixes, name, mod, ext in _MANAGERS if url.startswith(prefixes)),
        ("KombuManager", "kombu", "kombu"))
    try:
        importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"message_queue={url!r} needs the {module!r} package, which is not "
            f"installed. Fix: pip install 'server[{extra}]'") from None
    # with the room index, as the in-process manager has (server/room_index.py)
    manager_class = indexed(getattr(socketio, class_name))
    # a failing queue logs once per problem, not twice per emit (server/queue_log.py)
    logger = QueueLog(logging.getLogger("server.queue"))
    return manager_class(url, channel=channel, write_only=write_only, logger=logger)
