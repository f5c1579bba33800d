"""The uWSGI WebSocket hand-off driver (server/websocket/uwsgi.py), live.

uWSGI runs as a subprocess (master, 1 worker, --threads 2, --die-on-term)
taking HTTP three ways: --http-socket; the HTTP router (--http with
--http-websockets, uwsgi protocol between router and worker, as behind
nginx's uwsgi_pass); and --http11-socket (keep-alive).  The shared tests
in tests/driver_support/contract.py check the driver alone and through the
hand-off core (python-engineio); the tests below are uWSGI's own.
"""
from __future__ import annotations

import base64
import datetime
import os
import socket
import ssl
import struct
import subprocess
import time

import pytest
import websocket
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, TextMessage

from server.websocket.uwsgi import on_tls_socket, tls_addresses
from tests.driver_support.contract import (  # noqa: F401 - collected by pytest
    ECHO_APP,
    EIO_APP,
    WAIT,
    open_echo,
    stats,
    test_connection_is_ours_alone,
    test_engineio_one_megabyte_binary_is_byte_exact,
    test_engineio_polling_then_upgrade,
    test_engineio_threads_are_freed,
    test_engineio_websocket_only,
    test_request_threads_are_freed,
    test_server_writes_nothing_on_the_connection,
    test_sigterm_exits_in_bounded_time,
)
from tests.driver_support.servers import LiveServer, free_port, uwsgi_binary

pytestmark = pytest.mark.live

#: uWSGI versions whose internals server/websocket/uwsgi.py was checked
#: against: uwsgi.connection_fd() is the request's connection and
#: uwsgi.has_threads / uwsgi.opt exist; after the app returns,
#: uwsgi_close_request writes start_response's headers if nothing was
#: written and proto_close either close()s the descriptor (http, uwsgi,
#: https protocols) or keeps it for a keep-alive read (http11), never
#: shutdown(); the HTTP router passes raw bytes after a WebSocket upgrade
#: with --http-websockets (Upgrade: websocket and Sec-WebSocket-Version).
VERIFIED_UWSGI = ("2.0.31",)

@pytest.fixture(scope="module",
                params=["uwsgi-http-socket", "uwsgi-router", "uwsgi-http11-socket"])
def server_kind(request):
    return request.param


@pytest.fixture(scope="module")
def echo_server(server_kind):
    server = LiveServer(server_kind, ECHO_APP, driver="uwsgi")
    try:
        yield server.wait_ready()
    finally:
        server.close()


@pytest.fixture(scope="module", params=["uwsgi-http-socket", "uwsgi-router"])
def eio_server(request):
    # not --http11-socket: each idle keep-alive connection holds a request
    # thread there for socket-timeout seconds, whatever the hand-off does
    server = LiveServer(request.param, EIO_APP)
    try:
        yield server.wait_ready()
    finally:
        server.close()


def test_uwsgi_version_is_verified():
    installed = subprocess.run([uwsgi_binary(), "--version"], capture_output=True,
                               text=True, timeout=WAIT, check=True).stdout.strip()
    assert installed in VERIFIED_UWSGI, (
        f"uWSGI {installed} is not a version the hand-off driver was verified against "
        f"{VERIFIED_UWSGI}: re-read what VERIFIED_UWSGI in {__file__} names in uWSGI's "
        f"sources, run this file, then add it")


def test_websocket_outlives_harakiri():
    # the request ends when the app returns, so harakiri (1 s here) never
    # sees a long request and the worker serving the WebSocket lives on
    server = LiveServer("uwsgi-http-socket", ECHO_APP, driver="uwsgi",
                        extra=("--harakiri", "1"))
    try:
        server.wait_ready()
        pid = stats(server)["pid"]
        ws = open_echo(server)
        try:
            deadline = time.monotonic() + 2.5  # past harakiri and its 1 s check period
            count = 0
            while time.monotonic() < deadline:
                ws.send(f"tick {count}")
                assert ws.recv() == f"tick {count}"
                count += 1
                time.sleep(0.1)
        finally:
            ws.close()
        assert stats(server)["pid"] == pid, f"the worker was replaced:\n{server.log()}"
        assert "HARAKIRI" not in server.log(), f"harakiri fired:\n{server.log()}"
    finally:
        server.close()


def test_router_without_http_websockets_is_refused_with_the_fix_named():
    # without --http-websockets the router would pass the 101 but never the
    # client's frames: a WebSocket that hangs.  Refused, it fails clearly.
    server = LiveServer("uwsgi-router-without-websockets", ECHO_APP, driver="uwsgi")
    try:
        server.wait_ready()
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"ws://127.0.0.1:{server.port}/echo", timeout=WAIT)
        assert refused.value.status_code == 400, f"expected HTTP 400, got {refused.value!r}"
        reason = refused.value.resp_body.decode()
        assert "http-websockets" in reason, f"the refusal should name the fix, got {reason!r}"
    finally:
        server.close()


def _uwsgi_packet(variables: dict[str, str]) -> bytes:
    """A uwsgi-protocol request, as nginx's uwsgi_pass sends it."""
    body = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
                    for k, v in ((k.encode(), v.encode()) for k, v in variables.items()))
    return struct.pack("<BHB", 0, len(body), 0) + body


def test_uwsgi_protocol_on_a_unix_socket_as_behind_nginx(tmp_path):
    # what nginx's uwsgi_pass does, without nginx: the request as uwsgi
    # variables on a UNIX socket, then raw bytes both ways after the 101
    path = tmp_path / "app.sock"
    server = LiveServer("uwsgi-http-socket", ECHO_APP, driver="uwsgi",
                        extra=("--socket", str(path)))
    client = Connection(ConnectionType.CLIENT)
    try:
        server.wait_ready()
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(WAIT)
            s.connect(str(path))
            s.sendall(_uwsgi_packet({
                "REQUEST_METHOD": "GET", "REQUEST_URI": "/echo", "PATH_INFO": "/echo",
                "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "localhost",
                "SERVER_PORT": "80", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "localhost",
                "HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "keep-alive, Upgrade",
                "HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(os.urandom(16)).decode(),
                "HTTP_SEC_WEBSOCKET_VERSION": "13"}))
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = s.recv(65536)
                assert chunk, f"closed during the handshake after {received!r}:\n{server.log()}"
                received += chunk
            head, _, rest = received.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101 ") and b"X-Handoff: echo" in head, \
                f"expected our own 101, got {head!r}"
            for text in ("over uwsgi", "fds?"):
                s.sendall(client.send(TextMessage(data=text)))
            s.sendall(client.send(CloseConnection(code=1000)))
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
        client.receive_data(rest)
        events = list(client.events())
        assert [type(e) for e in events] == [TextMessage, TextMessage, CloseConnection], \
            f"expected two echoes and a Close, got {events!r}"
        assert [events[0].data, events[1].data] == ["over uwsgi", "1"], f"got {events!r}"
    finally:
        server.close()


def _self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_terminated_by_uwsgi_is_refused_and_plain_socket_still_hands_off(tmp_path):
    cert, key = _self_signed(tmp_path)
    tls_port = free_port()
    server = LiveServer("uwsgi-http-socket", ECHO_APP, driver="uwsgi",
                        extra=("--https-socket", f"127.0.0.1:{tls_port},{cert},{key}"))
    try:
        server.wait_ready()
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(f"wss://127.0.0.1:{tls_port}/echo", timeout=WAIT,
                                        sslopt={"cert_reqs": ssl.CERT_NONE})
        assert refused.value.status_code == 400, f"expected HTTP 400, got {refused.value!r}"
        reason = refused.value.resp_body.decode()
        assert "TLS" in reason and "https-socket" in reason, \
            f"the refusal should say uWSGI terminates TLS, got {reason!r}"
        ws = open_echo(server)  # the plain socket of the same server
        try:
            ws.send("plain")
            assert ws.recv() == "plain"
        finally:
            ws.close()
    finally:
        server.close()


@pytest.mark.parametrize("local, addresses, expected", [
    (("127.0.0.1", 8443), ["127.0.0.1:8443"], True),
    (("10.0.0.5", 8443), [":8443"], True),
    (("::1", 8443, 0, 0), ["[::]:8443"], True),
    (("127.0.0.1", 8080), ["127.0.0.1:8443"], False),
    (("127.0.0.1", 8080), [], False),
    ("/run/app/tls.sock", ["/run/app/tls.sock"], True),
    ("/run/app/plain.sock", ["/run/app/tls.sock"], False),
    ("\0app-tls", ["@app-tls"], True),
    (("127.0.0.1", 8080), ["/run/app/tls.sock"], False),
    ("/run/app/plain.sock", ["127.0.0.1:8443"], False),
    (("127.0.0.1", 8080), ["=0"], True),  # a shared socket we cannot resolve: refuse
])
def test_on_tls_socket(local, addresses, expected):
    assert on_tls_socket(local, addresses) is expected


def test_tls_addresses_reads_every_tls_socket_option():
    opt = {"http-socket": b"127.0.0.1:8080",
           "https-socket": [b"127.0.0.1:8443,c.pem,k.pem", b"/run/tls.sock,c.pem,k.pem"],
           "suwsgi-socket": b":9443,c.pem,k.pem,HIGH", "master": True}
    assert tls_addresses(opt) == ["127.0.0.1:8443", "/run/tls.sock", ":9443"]
