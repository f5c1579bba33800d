"""The security policy under gunicorn (gthread), where the upstream gaps were measured.

A real gunicorn subprocess on a free loopback port, stopped by its PID; the
policy options come from ``SERVER_*`` environment variables, read through the
settings table as the extension will.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import requests
import socketio
import websocket

from tests.livesupport import free_port

pytestmark = pytest.mark.live
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"

APP = '''
import flask

import server

app = flask.Flask(__name__)
# the built-in policy; SERVER_TRUSTED_PROXIES comes from the environment
sio = server.SocketIO(app, max_http_buffer_size=1000)


@app.route("/ping")
def ping():
    return "pong"


@sio.on("echo")
def echo(data):
    return data

'''


@pytest.fixture(scope="module", params=["untrusted", "trusted"])
def gunicorn(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("security_gunicorn")
    (tmp / "secured_app.py").write_text(APP)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, str(tmp)]),
           "SERVER_TRUSTED_PROXIES": "1" if request.param == "trusted" else ""}
    log = open(tmp / "gunicorn.log", "w+b")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "8", "-w", "1",
         "-b", f"127.0.0.1:{port}", "--graceful-timeout", "2", "--no-control-socket",
         "--forwarded-allow-ips", "", "secured_app:app"],
        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"gunicorn exited:\n{(tmp / 'gunicorn.log').read_text()}"
            assert time.monotonic() < deadline, "gunicorn not ready after 30 s"
            try:
                if requests.get(url + "/ping", timeout=1).text == "pong":
                    break
            except requests.RequestException:  # bound before the worker is ready
                time.sleep(0.05)
        yield url, request.param
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _status(url, head):
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head.encode() + b"\r\n")
        return int(s.recv(200).split()[1])


def test_chunked_post_is_411_and_oversized_is_413(gunicorn):
    url, _ = gunicorn
    sid = json.loads(requests.get(url + HANDSHAKE, timeout=10).text[1:])["sid"]
    path = f"{HANDSHAKE}&sid={sid}"
    assert _status(url, f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                        "Transfer-Encoding: chunked\r\n") == 411
    assert _status(url, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n") == 413


def test_forwarded_host_counts_only_from_a_trusted_proxy(gunicorn):
    url, trust = gunicorn
    headers = {"Origin": "https://evil.example", "X-Forwarded-Host": "evil.example",
               "X-Forwarded-Proto": "https"}
    polling = requests.get(url + HANDSHAKE, headers=headers, timeout=10).status_code
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    try:
        ws = websocket.create_connection(ws_url, origin=headers["Origin"], timeout=10,
                                         header=[f"{k}: {v}" for k, v in headers.items()
                                                 if k != "Origin"])
        ws.close()
        ws_status = 101
    except websocket.WebSocketBadStatusException as e:
        ws_status = e.status_code
    expected = (200, 101) if trust == "trusted" else (403, 403)
    assert (polling, ws_status) == expected


def test_client_round_trips_on_both_transports(gunicorn):
    url, _ = gunicorn
    for transport in ("polling", "websocket"):
        with socketio.SimpleClient() as client:
            client.connect(url, transports=[transport])
            assert client.call("echo", transport, timeout=10) == transport
