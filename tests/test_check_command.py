"""``python -m server check``: one OK/WARN/FAIL line per concern, exit 1 on FAIL."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from server.commands import check_items as c
from server.commands.check import report
from tests.livesupport import free_port

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SERVER_")}
    return subprocess.run([sys.executable, "-m", "server", "check", *args], check=False,
                          cwd=ROOT,
                          env={**environ, **(env or {})}, capture_output=True, text=True,
                          timeout=60)


def _only(lines, topic):
    found = [line for line in lines if line.topic == topic]
    assert len(found) == 1, f"expected one {topic!r} line, got {found}"
    return found[0]


def test_default_configuration_passes_with_a_tls_warning():
    done = _cli()
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    checks = [line for line in out if not line.startswith("     fix: ")][:-1]
    assert all(line.split()[0] in ("OK", "WARN", "FAIL") for line in checks), out
    topics = [line[5:].split(":")[0] for line in checks]
    assert topics == ["server", "threads", "connections", "app", "transports", "origins",
                      "tls", "message queue"], topics
    assert "WARN tls: off" in done.stdout and "fix: terminate TLS at a proxy" in done.stdout
    assert out[-1] == f"{len(checks)} checks, 0 failed"


def test_unreachable_message_queue_fails_without_showing_the_password():
    port = free_port()  # nothing listens there
    done = _cli(env={"SERVER_MESSAGE_QUEUE": f"redis://:hunter2@127.0.0.1:{port}/0"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"FAIL message queue: redis://127.0.0.1:{port} unreachable" in done.stdout
    assert "fix: start the broker" in done.stdout
    assert "hunter2" not in done.stdout


def test_reachable_message_queue_is_ok():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        (line,) = c.message_queue({"message_queue": f"redis://127.0.0.1:{port}"}, 2.0)
    assert (line.status, line.detail) == ("OK", f"redis://127.0.0.1:{port} reachable (TCP)")


def test_queue_default_ports_and_no_queue():
    assert c.message_queue({}, 1)[0].status == "OK"
    (line,) = c.message_queue({"message_queue": f"amqp://127.0.0.1:{free_port()}//"}, 1)
    assert line.status == "FAIL"
    assert c.QUEUE_PORTS["amqp"] == 5672 and c.QUEUE_PORTS["redis"] == 6379


def test_an_app_that_cannot_load_fails():
    done = _cli("--app", "no_such_module:app")
    assert done.returncode == 1
    assert "FAIL app: cannot load no_such_module:app: ModuleNotFoundError" in done.stdout
    assert "WARN tls" in done.stdout  # the other checks still ran


def test_a_bad_environment_value_names_itself():
    lines = report("wsgi:app", 1.0, {"SERVER_THREADS": "many"})
    line = _only(lines, "capacity")
    assert line.status == "FAIL" and "SERVER_THREADS='many'" in line.detail


def test_more_connections_than_descriptors_fails():
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        pytest.skip("no descriptor limit in this environment")
    lines = c.capacity({"SERVER_MAX_CONNECTIONS": str(soft * 2)})
    line = _only(lines, "connections")
    assert line.status == "FAIL", line
    assert "LimitNOFILE" in line.fix and f"max_connections={soft * 2}" in line.detail


@pytest.mark.parametrize("options, status, words", [
    ({}, "OK", "polling, websocket"),
    ({"transports": ["websocket"]}, "OK", "websocket"),
    ({"transports": ["polling"]}, "WARN", "polling only"),
    ({"allow_upgrades": False}, "WARN", "allow_upgrades=False"),
])
def test_transports(options, status, words):
    (line,) = c.transports(options)
    assert (line.status, words in line.detail) == (status, True), line


@pytest.mark.parametrize("value, status, words", [
    (None, "OK", "same origin only"),
    ("*", "WARN", "any site"),
    ([], "WARN", "check is off"),
    (["https://app.example.com", "http://127.0.0.1:8080"], "OK", "https://app.example.com"),
    ("https://app.example.com", "OK", "https://app.example.com"),
    (["https://app.example.com/"], "FAIL", "trailing slash"),
    (["app.example.com"], "FAIL", "scheme://host"),
    (lambda origin: True, "OK", "decided by"),
])
def test_origins(value, status, words):
    (line,) = c.origins({"cors_allowed_origins": value})
    assert (line.status, words in line.detail) == (status, True), line


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    pytest.importorskip("cryptography")
    from server.tls_certs import selfsigned

    base = tmp_path_factory.mktemp("tls")
    return selfsigned(str(base / "a")), selfsigned(str(base / "b"), days=5)


def test_tls_with_a_good_certificate(certs):
    good, _ = certs
    (line,) = c.tls({"SERVER_CERTFILE": good.cert, "SERVER_KEYFILE": good.key})
    assert line.status == "OK", line
    assert "key matches, valid until" in line.detail and "(364 days)" in line.detail


def test_tls_expiring_soon_warns(certs):
    _, short = certs
    (line,) = c.tls({"SERVER_CERTFILE": short.cert, "SERVER_KEYFILE": short.key})
    assert line.status == "WARN" and line.fix == "renew the certificate", line


def test_tls_key_of_another_certificate_fails(certs):
    good, short = certs
    (line,) = c.tls({"SERVER_CERTFILE": good.cert, "SERVER_KEYFILE": short.key})
    assert line.status == "FAIL", line
    assert line.fix, "a FAIL line carries a fix"


def test_tls_half_configured_fails(tmp_path):
    (line,) = c.tls({"SERVER_CERTFILE": str(tmp_path / "cert.pem")})
    assert line.status == "FAIL" and "one without the other" in line.detail


def test_tls_missing_file_fails_through_the_cli(tmp_path):
    missing = tmp_path / "nope.pem"
    done = _cli(env={"SERVER_CERTFILE": str(missing), "SERVER_KEYFILE": str(missing)})
    assert done.returncode == 1
    assert "FAIL tls:" in done.stdout and str(missing) in done.stdout
