"""server.tls_io on a real TLS connection over a local socket pair."""
from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("cryptography")

from server import tls
from server.tls_certs import selfsigned
from server.tls_io import recv_exclusive


@pytest.fixture
def tls_pair(tmp_path) -> Iterator[tuple[ssl.SSLSocket, ssl.SSLSocket]]:
    """(server side, client side) of one TLS connection, handshake done."""
    issued = selfsigned(str(tmp_path / "tls"))
    server_ctx = tls.make_ssl_context(issued.cert, issued.key)
    client_ctx = ssl.create_default_context(cafile=issued.ca)
    a, b = socket.socketpair()
    with ThreadPoolExecutor(1) as pool:
        accepting = pool.submit(server_ctx.wrap_socket, a, server_side=True)
        client = client_ctx.wrap_socket(b, server_hostname="localhost")
        server = accepting.result(10)
    try:
        yield server, client
    finally:
        client.close()
        server.close()


def test_reads_what_the_peer_wrote_then_the_end(tls_pair):
    server, client = tls_pair
    server.settimeout(10)
    client.sendall(b"hello")
    assert recv_exclusive(server, threading.Lock(), 1024) == b"hello"
    client.close()
    assert recv_exclusive(server, threading.Lock(), 1024) == b"", "expected the end of stream"


def test_times_out_after_the_sockets_own_timeout(tls_pair):
    server, _client = tls_pair
    server.settimeout(0.2)
    with pytest.raises(TimeoutError):
        recv_exclusive(server, threading.Lock(), 1024)
    assert server.gettimeout() == 0.2, "the socket's timeout must be restored"


def test_a_waiting_reader_does_not_keep_a_writer_out(tls_pair):
    server, client = tls_pair
    server.settimeout(10)
    lock = threading.Lock()
    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(recv_exclusive, server, lock, 1024)
        # the reader waits for data outside the lock: a writer gets it at once
        assert lock.acquire(timeout=5), "the waiting reader held the connection's lock"
        try:
            server.sendall(b"ping")  # the server side writes while its reader waits
        finally:
            lock.release()
        assert client.recv(1024) == b"ping"
        client.sendall(b"pong")
        assert reading.result(10) == b"pong"
