"""A python-socketio client's acked exchange over TLS, in a process of its own.

    python tests/tls_exchange_client.py URL CA_FILE TRANSPORT[,TRANSPORT]

Connects trusting the development CA, waits for the server's ``welcome``,
gets two acknowledgements (``echo`` and ``join``) and prints one JSON line:
``{"transport": ...}`` on success, ``{"error": ...}`` saying where it stopped.
Run by tests/test_tls_servers.py in a fresh interpreter, away from the
threads and sockets earlier tests leave in the pytest process.

The WebSocket is server.tls_client.SerialTLSWebSocket, as docs/tls.md tells
users of python-socketio's client to do: with websocket-client's own class the
client's reader and writer threads use one OpenSSL connection at once, and
about one exchange in 200 drops a healthy connection on the client's side
(the server's log shows it received and answered).
"""
from __future__ import annotations

import json
import sys
import threading

import requests
import socketio

from server.tls_client import SerialTLSWebSocket


def exchange(url: str, ca: str, transports: list[str]) -> dict:
    session = requests.Session()
    session.verify = ca  # used for polling, and passed to websocket-client as ca_certs
    # else requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (set on CI images) win
    # over session.verify, and the development CA is not in that bundle
    session.trust_env = False
    # engine.io's log goes to stderr, which the test shows when the exchange fails
    client = socketio.Client(reconnection=False, http_session=session, engineio_logger=True,
                             websocket_extra_options={"class_": SerialTLSWebSocket})
    welcome = threading.Event()
    client.on("welcome", lambda data=None: welcome.set())
    dropped: list[str] = []
    client.on("disconnect", lambda reason=None: dropped.append(str(reason)))
    try:
        client.connect(url, transports=transports, wait_timeout=10)
    except socketio.exceptions.ConnectionError as exc:
        return {"error": f"connect over {transports} failed: {exc}"}
    try:
        if not welcome.wait(10):
            return {"error": "no 'welcome' within 10 s of connecting"}
        for event, data in (("echo", {"text": "héllo"}), ("join", "tls-room")):
            try:
                got = client.call(event, data, timeout=40)
            except socketio.exceptions.TimeoutError:
                return {"error": f"no ack for {event!r} within 40 s over {transports}: client "
                                 f"transport {client.eio.current_transport!r}, state "
                                 f"{client.eio.state!r}, disconnected for {dropped or 'no reason'}"}
            if got != data:
                return {"error": f"{event!r} acknowledged {got!r}, expected {data!r}"}
        return {"transport": client.eio.current_transport}
    finally:
        client.disconnect()


if __name__ == "__main__":
    url, ca, transports = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    print(json.dumps(exchange(url, ca, transports)), flush=True)
