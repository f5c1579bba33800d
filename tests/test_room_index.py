"""The room index: the same rooms as python-socketio's Manager, found without a scan."""
import itertools
import random
import types

import socketio

from server import SocketIO
from server.queues import make_client_manager
from server.room_index import IndexedManager, RoomIndex


def _manager(cls):
    manager = cls()
    ids = itertools.count()  # the same sids in both managers
    manager.set_server(types.SimpleNamespace(
        packet_class=socketio.packet.Packet,
        eio=types.SimpleNamespace(generate_id=lambda: f"s{next(ids)}")))
    return manager


def _snapshot(manager, sids, namespaces):
    rooms = {ns: {room: dict(members) for room, members in by_room.items()}
             for ns, by_room in manager.rooms.items()}
    # as sets: upstream lists a client's rooms in the namespace's creation
    # order, the index in the order the client entered them (neither is documented)
    return rooms, {(sid, ns): sorted(manager.get_rooms(sid, ns), key=str)
                   for sid in sids for ns in namespaces}


def test_indexed_manager_keeps_the_same_rooms_as_upstream():
    rng = random.Random(8)
    namespaces = ["/", "/chat"]
    upstream, ours = _manager(socketio.Manager), _manager(IndexedManager)
    sids = []
    for step in range(3000):
        action = rng.random()
        ns = rng.choice(namespaces)
        connected = [sid for sid in sids if upstream.is_connected(sid, ns)]
        if action < 0.2 or not connected:
            eio_sid = f"e{step}"
            sid = upstream.connect(eio_sid, ns)
            assert ours.connect(eio_sid, ns) == sid
            sids.append(sid)
        elif action < 0.6:
            sid, room = rng.choice(connected), f"room{rng.randrange(12)}"
            upstream.enter_room(sid, ns, room)
            ours.enter_room(sid, ns, room)
        elif action < 0.8:
            sid, room = rng.choice(connected), f"room{rng.randrange(12)}"
            upstream.leave_room(sid, ns, room)
            ours.leave_room(sid, ns, room)
        elif action < 0.85:
            room = f"room{rng.randrange(12)}"
            upstream.close_room(room, ns)
            ours.close_room(room, ns)
        else:
            sid = rng.choice(connected)
            upstream.pre_disconnect(sid, ns)
            ours.pre_disconnect(sid, ns)
            upstream.disconnect(sid, ns)
            ours.disconnect(sid, ns)
        if step % 100 == 0:
            assert _snapshot(ours, sids, namespaces) == _snapshot(upstream, sids, namespaces), \
                f"rooms differ from python-socketio's Manager after step {step}"
    assert _snapshot(ours, sids, namespaces) == _snapshot(upstream, sids, namespaces)
    assert (ours.pending_connect, ours.pending_disconnect, ours.callbacks) == \
        (upstream.pending_connect, upstream.pending_disconnect, upstream.callbacks)


class _CountingRooms(dict):
    """A namespace's room table that counts whole-table walks."""

    walks = 0

    def items(self):
        type(self).walks += 1
        return super().items()

    def copy(self):
        type(self).walks += 1
        return _CountingRooms(self)


def test_disconnect_and_rooms_do_not_walk_every_room():
    manager = _manager(IndexedManager)
    sids = [manager.connect(f"e{i}", "/") for i in range(2000)]
    manager.rooms["/"] = _CountingRooms(manager.rooms["/"])
    manager.enter_room(sids[0], "/", "lobby")
    assert manager.get_rooms(sids[0], "/") == [sids[0], "lobby"]
    for sid in sids[:1000]:
        manager.pre_disconnect(sid, "/")
        manager.disconnect(sid, "/")
    assert _CountingRooms.walks == 0, (
        f"expected no walk over the 2,000-room table, saw {_CountingRooms.walks}")
    assert len(manager.rooms["/"]) == 1 + 1000  # the None room and the remaining sid rooms
    assert manager.get_rooms(sids[0], "/") == []


def test_socketio_and_queue_managers_carry_the_index():
    from flask import Flask

    socketio_ = SocketIO(Flask(__name__))
    assert isinstance(socketio_.server.manager, RoomIndex)
    queue = make_client_manager("redis://127.0.0.1:1/0", write_only=True)
    assert isinstance(queue, RoomIndex) and isinstance(queue, socketio.RedisManager)
    assert type(queue).__name__ == "IndexedRedisManager"
