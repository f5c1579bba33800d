"""Health, readiness and metrics over real HTTP, with python-socketio clients."""
import contextlib
import statistics
import threading
import time

import flask
import pytest
import requests
import socketio as sio_client
from prometheus_client.parser import text_string_to_metric_families

import server
from server import ops
from tests.livesupport import serve_in_thread

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"
WAIT = 20  # seconds: a generous bound on events, the machine may be loaded


@contextlib.contextmanager
def live_app(ops_options=None, **options):
    app = flask.Flask(__name__)
    sio = server.SocketIO(app, **options)
    release = threading.Event()
    app.release = release

    @sio.on("echo")
    def echo(data):
        return data

    @sio.on("echo", namespace="/chat")
    def chat_echo(data):
        return data

    @sio.on("block")
    def block():
        release.wait(WAIT)
        return "released"

    app.wsgi_app = ops.wrap(app.wsgi_app, sio, ops_options or {})
    try:
        with serve_in_thread(app) as url:
            yield url, sio
    finally:
        release.set()


def scrape(url):
    answer = requests.get(url + "/metrics", timeout=WAIT)
    assert answer.status_code == 200, f"/metrics answered {answer.status_code}: {answer.text}"
    values = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def value(values, name, **labels):
    return values.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(predicate, what):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    pytest.fail(f"waited {WAIT}s for {what}")


def connect(url, transports, namespaces=("/",)):
    client = sio_client.Client(reconnection=False)
    client.connect(url, transports=transports, namespaces=list(namespaces), wait_timeout=WAIT)
    return client


def test_metrics_follow_the_traffic():
    with live_app() as (url, _sio):
        before = scrape(url)
        ws = connect(url, ["websocket"], namespaces=("/", "/chat"))
        polling = connect(url, ["polling"])
        during = scrape(url)
        expected = {("/", "websocket"): 1, ("/", "polling"): 1, ("/chat", "websocket"): 1,
                    ("/chat", "polling"): 0}
        seen = {key: value(during, "socketio_clients", namespace=key[0], transport=key[1])
                for key in expected}
        assert seen == expected, f"clients by namespace and transport: {seen}"
        assert value(during, "socketio_engineio_sessions", transport="websocket") == 1
        assert value(during, "socketio_engineio_sessions", transport="polling") == 1
        assert value(during, "socketio_websocket_connections") == 1
        for i in range(5):
            assert ws.call("echo", i, timeout=WAIT) == i
        assert polling.call("echo", "x", timeout=WAIT) == "x"
        refused = requests.get(url + HANDSHAKE, headers={"Origin": "https://evil.example"},
                               timeout=WAIT)
        assert refused.status_code == 403
        after = scrape(url)
        origin_refusals = (value(after, "socketio_requests_refused_total", reason="origin")
                           - value(before, "socketio_requests_refused_total", reason="origin"))
        assert origin_refusals == 1, f"expected one origin refusal counted, got {origin_refusals}"
        ws.disconnect()
        polling.disconnect()
        wait_for(lambda: sum(v for (n, _), v in scrape(url).items()
                             if n == "socketio_engineio_sessions") == 0,
                 "the sessions to close")


def test_event_counters_follow_the_traffic():
    with live_app() as (url, sio):
        if not hasattr(sio.server, "stats"):
            pytest.skip("SocketIOServer has no .stats: server/sio.py does not count "
                        "events yet (server/ops_stats.py EventStats)")
        before = scrape(url)
        ws = connect(url, ["websocket"], namespaces=("/", "/chat"))
        polling = connect(url, ["polling"])
        for i in range(5):
            assert ws.call("echo", i, timeout=WAIT, namespace="/chat") == i
        assert polling.call("echo", "x", timeout=WAIT) == "x"
        after = scrape(url)
        received = (value(after, "socketio_events_received_total")
                    - value(before, "socketio_events_received_total"))
        assert received == 6, f"6 events sent, socketio_events_received_total moved {received}"
        sent = (value(after, "socketio_packets_sent_total")
                - value(before, "socketio_packets_sent_total"))
        assert sent >= 6 + 3, f"6 acks and 3 connect answers at least, counted {sent}"
        # a duration is recorded just after the handler's ack is sent: wait for it
        wait_for(lambda: value(scrape(url), "socketio_handler_duration_seconds_count")
                 - value(before, "socketio_handler_duration_seconds_count") == 6,
                 "6 handler durations")
        waited = (value(scrape(url), "socketio_handler_wait_seconds_count")
                  - value(before, "socketio_handler_wait_seconds_count"))
        assert waited == 6, f"6 queue waits expected, got {waited}"
        ws.disconnect()
        polling.disconnect()


def test_health_answers_at_the_connection_cap(monkeypatch):
    monkeypatch.setenv("SERVER_MAX_CONNECTIONS", "3")
    with live_app() as (url, _sio):
        clients = [connect(url, ["websocket"]), connect(url, ["websocket"]),
                   connect(url, ["polling"])]
        full = requests.get(url + HANDSHAKE, timeout=WAIT)
        assert full.status_code == 503, f"the cap should refuse a 4th client: {full.status_code}"
        timings, codes = [], []
        for _ in range(15):
            start = time.perf_counter()
            answer = requests.get(url + "/healthz", timeout=WAIT)
            timings.append(time.perf_counter() - start)
            codes.append((answer.status_code, answer.text))
        assert codes == [(200, "ok\n")] * 15, codes
        print(f"\n/healthz at the cap: median {statistics.median(timings) * 1000:.1f} ms, "
              f"max {max(timings) * 1000:.1f} ms over {len(timings)} requests")
        ready = requests.get(url + "/readyz", timeout=WAIT)
        assert ready.status_code == 503, ready.text
        facts = ready.json()
        assert facts["reason"] == "connection cap reached (max_connections)", facts
        assert (facts["sessions"], facts["max_connections"]) == (3, 3), facts
        refused = scrape(url)
        assert value(refused, "socketio_requests_refused_total", reason="cap_total") >= 1
        for client in clients:
            client.disconnect()
        wait_for(lambda: requests.get(url + "/readyz", timeout=WAIT).status_code == 200,
                 "/readyz to answer 200 once the clients left")


def test_readyz_503_while_the_handler_queue_is_full():
    with live_app(handler_threads=1, handler_queue=1) as (url, sio):
        app_release = sio.sockio_mw.flask_app.release
        client = connect(url, ["websocket"])
        answers = []
        client.emit("block", callback=lambda *a: answers.append(a))
        wait_for(lambda: sio.server.handler_pool.pending == 1, "the handler to start")
        ready = requests.get(url + "/readyz", timeout=WAIT)
        assert ready.status_code == 503 and ready.json()["reason"].startswith("handler queue"), \
            (ready.status_code, ready.text)
        assert requests.get(url + "/healthz", timeout=WAIT).status_code == 200
        app_release.set()
        wait_for(lambda: answers, "the blocked handler's ack")
        wait_for(lambda: requests.get(url + "/readyz", timeout=WAIT).status_code == 200,
                 "/readyz to answer 200 once the queue drained")
        client.disconnect()


def test_cross_site_scrape_is_refused():
    with live_app() as (url, _sio):
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            answer = requests.get(url + "/metrics", headers=headers, timeout=WAIT)
            assert answer.status_code == 403, (headers, answer.status_code)
            assert "Access-Control-Allow-Origin" not in answer.headers
            assert "socketio_" not in answer.text
