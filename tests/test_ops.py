"""Health, readiness and metrics endpoints (server/ops.py), in process."""
import json
import sys
import types

import flask
import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

import server
from server import ops, settings
from server.errors import ConfigurationError
from server.ops_stats import Histogram


def make_app(**ops_options):
    app = flask.Flask(__name__)
    sio = server.SocketIO(app)
    app.wsgi_app = ops.wrap(app.wsgi_app, sio, ops_options)
    return app, sio


def get(app, path, addr="127.0.0.1", method="GET", **headers):
    client = Client(app.wsgi_app)
    return client.open(path, method=method, headers=headers,
                       environ_base={"REMOTE_ADDR": addr})


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_healthz_and_readyz_answer_without_the_app():
    app, _ = make_app()
    health = get(app, "/healthz")
    assert (health.status_code, health.text) == (200, "ok\n")
    assert health.headers["Cache-Control"] == "no-store"
    ready = get(app, "/readyz")
    assert ready.status_code == 200, ready.text
    assert json.loads(ready.text)["status"] == "ready"
    assert get(app, "/healthz", method="HEAD").data == b""
    post = get(app, "/healthz", method="POST")
    assert (post.status_code, post.headers.get("Allow")) == (405, "GET, HEAD")


def test_other_paths_reach_the_application():
    app, _ = make_app()
    app.add_url_rule("/hello", "hello", lambda: "hi")
    assert get(app, "/hello").text == "hi"
    assert get(app, "/healthzz").status_code == 404


def test_an_application_route_keeps_its_path(caplog):
    app, _ = make_app()
    app.add_url_rule("/healthz", "healthz", lambda: {"mine": True})
    answer = get(app, "/healthz")
    assert answer.get_json() == {"mine": True}, f"expected the app's route, got {answer.text!r}"
    assert "routes /healthz itself" in caplog.text
    assert get(app, "/readyz").status_code == 200  # the others are still ours


def test_paths_are_configurable_and_can_be_turned_off():
    app, _ = make_app(health_path="/live", ready_path=None, metrics_path=None)
    assert get(app, "/live").text == "ok\n"
    for path in ("/healthz", "/readyz", "/metrics"):
        assert get(app, path).status_code == 404, f"{path} should be off"
    plain = flask.Flask(__name__)
    sio = server.SocketIO(plain)
    inner = plain.wsgi_app
    while isinstance(inner, ops.OpsMiddleware):  # once SocketIO puts one in front itself
        inner = inner.app
    off = {"health_path": None, "ready_path": None, "metrics_path": None}
    assert ops.wrap(plain.wsgi_app, sio, off) is inner


def test_wrapping_again_replaces_the_previous_layer():
    app, sio = make_app()
    inner = app.wsgi_app.app
    app.wsgi_app = ops.wrap(app.wsgi_app, sio, {"health_path": "/h2"})
    assert app.wsgi_app.app is inner
    assert get(app, "/h2").text == "ok\n"


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
])
@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz"])
def test_cross_site_requests_are_refused(path, headers):
    app, _ = make_app()
    answer = get(app, path, **headers)
    assert answer.status_code == 403, f"{path} with {headers}: got {answer.status_code}"
    leaked = [k for k, _ in answer.headers.items() if k.lower().startswith("access-control-")]
    assert not leaked, f"no CORS headers expected, got {leaked}"


def test_same_origin_request_is_served():
    app, _ = make_app()
    answer = get(app, "/metrics", Origin="http://localhost", Host="localhost")
    assert answer.status_code == 200, answer.text


def test_metrics_only_for_allowed_clients():
    app, _ = make_app()
    far = get(app, "/metrics", addr="10.1.2.3")
    assert far.status_code == 403 and "metrics_allow" in far.text
    assert get(app, "/healthz", addr="10.1.2.3").status_code == 200
    assert get(app, "/metrics", addr="::1").status_code == 200
    # a local proxy may be serving the public: not without trusted_proxies
    proxied = get(app, "/metrics", X_Forwarded_For="203.0.113.9")
    assert proxied.status_code == 403 and "proxy" in proxied.text
    app, _ = make_app(metrics_allow=["10.0.0.0/8"], trusted_proxies=1)
    assert get(app, "/metrics", addr="10.1.2.3").status_code == 200
    assert get(app, "/metrics", X_Forwarded_For="10.9.9.9").status_code == 200
    assert get(app, "/metrics", X_Forwarded_For="203.0.113.9").status_code == 403


def test_metrics_parse_and_describe_the_server():
    app, sio = make_app()
    answer = get(app, "/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found = families(answer.text)
    for name in ("socketio_engineio_sessions", "socketio_clients", "socketio_max_connections",
                 "socketio_handler_threads", "socketio_handler_queue_length",
                 "socketio_websocket_connections", "socketio_requests_refused",
                 "process_cpu_seconds"):
        assert name in found, f"{name} missing from /metrics: {sorted(found)}"
    assert found["socketio_handler_threads"].samples[0].value == sio.server.handler_pool.size


def test_two_apps_in_one_process_have_their_own_registries():
    first, _ = make_app()
    second, _ = make_app()
    assert first.wsgi_app.registry is not second.wsgi_app.registry
    assert get(first, "/metrics").status_code == get(second, "/metrics").status_code == 200


def test_readiness_reasons():
    pool = types.SimpleNamespace(pending=0, max_pending=2)
    fake = types.SimpleNamespace(eio=types.SimpleNamespace(sockets={}), handler_pool=pool)
    config = ops.OpsConfig.load({"metrics_path": None})
    middleware = ops.OpsMiddleware(lambda e, s: [], fake, config, max_connections=1)
    assert middleware.readiness()[0] is True
    pool.pending = 2
    ready, facts = middleware.readiness()
    assert (ready, facts["reason"]) == (False, "handler queue full (handler_queue)")
    pool.pending = 0
    fake.eio.sockets["a"] = object()
    assert "connection cap" in middleware.readiness()[1]["reason"]
    fake.eio.sockets.clear()
    middleware.draining = "shutting down"
    assert middleware.readiness() == (False, {
        "status": "unavailable", "reason": "shutting down", "sessions": 0,
        "max_connections": 1, "handler_queue": 0, "handler_queue_limit": 2})


@pytest.mark.parametrize("name, value, words", [
    ("health_path", "healthz", "URL path"),
    ("metrics_path", "/m?x", "URL path"),
    ("metrics_allow", ["10.0.0.0/8", "example.com"], "'example.com'"),
    ("metrics_allow", "10.0.0.0/8", "list"),
])
def test_bad_settings_name_themselves(name, value, words):
    with pytest.raises(ConfigurationError) as err:
        ops.OpsConfig.load({name: value})
    assert name in str(err.value) and words in str(err.value), str(err.value)


def test_paths_must_differ():
    with pytest.raises(ConfigurationError, match="must differ"):
        ops.OpsConfig.load({"health_path": "/x", "ready_path": "/x"})


def test_settings_from_the_environment():
    resolved = settings.resolve({}, scopes=["ops"], environ={
        "SERVER_METRICS_ALLOW": "10.0.0.0/8, ::1", "SERVER_READY_PATH": "none"})
    assert resolved == {"metrics_allow": ["10.0.0.0/8", "::1"], "ready_path": None}


def test_without_prometheus_client(monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
    with pytest.raises(ConfigurationError) as err:
        ops.OpsConfig.load({"metrics_path": "/metrics"})
    assert "pip install 'server[metrics]'" in str(err.value)
    assert ops.OpsConfig.load({}).metrics_path is None  # default: off, no error
    app = flask.Flask(__name__)
    sio = server.SocketIO(app)
    app.wsgi_app = ops.wrap(app.wsgi_app, sio, {})
    assert get(app, "/metrics").status_code == 404
    assert get(app, "/healthz").status_code == 200


def test_histogram_buckets_are_cumulative():
    histogram = Histogram((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(seconds)
    buckets, total = histogram.snapshot()
    assert buckets == [("0.1", 2), ("1.0", 3), ("+Inf", 4)]
    assert total == pytest.approx(3.65)
