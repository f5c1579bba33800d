"""SecurityPolicy as a WSGI middleware, driven in-process (no sockets).

The wrapped application records what reached it, so each test can say both
what the client got and whether Engine.IO would have seen the request.
"""
import io
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from server.errors import ConfigurationError
from server.security import SecurityPolicy, wrap
from server.security_limits import (
    ConnectionTally,
    HandshakeRate,
    default_max_connections,
)

OWN = "http://localhost"
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


class Recorder:
    """A stand-in for the Socket.IO WSGI app: answers 200, remembers environs."""

    def __init__(self):
        self.seen = []

    def __call__(self, environ, start_response):
        self.seen.append(dict(environ))
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Access-Control-Allow-Origin", "*")])
        return [b"ok"]


def make(**options):
    app = Recorder()
    options.setdefault("ip_limits_on_loopback", True)  # the requests come from 127.0.0.1
    policy = SecurityPolicy(app, **options)
    return policy, app, Client(policy)


def get(client, path=HANDSHAKE, origin=None, **kw):
    headers = dict(kw.pop("headers", {}))
    if origin is not None:
        headers["Origin"] = origin
    kw.setdefault("environ_base", {"REMOTE_ADDR": "127.0.0.1"})
    return client.get(path, headers=headers, buffered=True, **kw)  # closes the app_iter


# -- origins ----------------------------------------------------------------------
def test_no_origin_is_allowed_and_gets_no_cors_grant():
    _, app, client = make()
    r = get(client)
    assert r.status_code == 200 and len(app.seen) == 1
    assert "Access-Control-Allow-Origin" not in r.headers, (
        "engine.io's own wildcard header must be replaced by ours")
    assert r.headers["Vary"] == "Origin"


@pytest.mark.parametrize("origin", [OWN, "http://LOCALHOST:80", "http://localhost:80"])
def test_same_origin_is_allowed_and_echoed(origin):
    _, _, client = make()
    r = get(client, origin=origin)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert "Access-Control-Allow-Credentials" not in r.headers


@pytest.mark.parametrize("origin", [
    "https://evil.example", "null", "http://localhost.evil.example", "https://localhost",
    "http://localhost:8080", "http://user@localhost", "http://localhost/",
    "http://" + "a" * 300, "not an origin",
])
def test_foreign_or_malformed_origins_are_refused_before_the_app(origin, caplog):
    _, app, client = make()
    with caplog.at_level(logging.WARNING, logger="server.security"):
        for _ in range(3):
            r = get(client, origin=origin)
            assert r.status_code == 403, (origin, r.status_code)
    assert app.seen == [], "a refused request must not reach Engine.IO"
    assert r.mimetype == "text/plain" and r.get_data(as_text=True).startswith("Origin")
    lines = [rec for rec in caplog.records if rec.name == "server.security"]
    assert len(lines) == 1, f"expected one rate-limited line, got {len(lines)}"


def test_refusal_log_names_the_origin_and_the_setting(caplog):
    _, _, client = make()
    with caplog.at_level(logging.WARNING, logger="server.security"):
        get(client, origin="https://evil.example")
    assert "https://evil.example" in caplog.text and "cors_allowed_origins" in caplog.text


def test_allow_list_with_credentials():
    _, _, client = make(cors_allowed_origins=["https://app.example"], cors_credentials=True)
    r = get(client, origin="https://app.example")
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert get(client, origin="https://app.example:8443").status_code == 403


def test_any_origin_needs_opt_in_and_never_sends_credentials():
    with pytest.raises(ConfigurationError, match=r"cors_allowed_origins='\*'.*allow_any_origin"):
        make(cors_allowed_origins="*")
    with pytest.raises(ConfigurationError, match="cors_credentials=True"):
        make(cors_allowed_origins="*", allow_any_origin=True, cors_credentials=True)
    _, _, client = make(cors_allowed_origins="*", allow_any_origin=True)
    r = get(client, origin="https://anywhere.example")
    assert r.status_code == 200
    assert "Access-Control-Allow-Credentials" not in r.headers
    assert get(client, origin="null").status_code == 403, "malformed stays refused"


@pytest.mark.parametrize("entry", ["https://app.example/", "https://app.example/x",
                                   "app.example", "https://u@app.example", "null"])
def test_allow_list_entries_are_validated_at_start_up(entry):
    with pytest.raises(ConfigurationError) as info:
        make(cors_allowed_origins=[entry])
    assert repr(entry) in str(info.value) and "scheme://host[:port]" in str(info.value)


def test_callable_allow_list_with_one_or_two_arguments():
    _, _, one = make(cors_allowed_origins=lambda origin: origin.endswith(".ok.example"))
    _, _, two = make(cors_allowed_origins=lambda origin, environ: "PATH_INFO" in environ)
    assert get(one, origin="https://a.ok.example").status_code == 200
    assert get(one, origin="https://a.no.example").status_code == 403
    assert get(two, origin="https://b.example").status_code == 200


def test_preflight_is_answered_for_allowed_origins_only():
    _, app, client = make(cors_allowed_origins=["https://app.example"])
    r = client.options(HANDSHAKE, headers={"Origin": "https://app.example",
                                           "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 204 and app.seen == []
    assert r.headers["Access-Control-Allow-Headers"] == "content-type"
    assert client.options(HANDSHAKE, headers={"Origin": "https://x.example"}).status_code == 403


def test_other_paths_pass_with_security_headers_only():
    _, app, client = make()
    r = get(client, "/login", origin="https://evil.example")
    assert r.status_code == 200 and len(app.seen) == 1
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert r.headers["Access-Control-Allow-Origin"] == "*", "Flask's own headers untouched"


# -- proxies ----------------------------------------------------------------------
SPOOF = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
         "X-Forwarded-For": "203.0.113.9"}


def test_forwarded_headers_from_untrusted_clients_are_ignored_and_removed():
    _, app, client = make()
    r = get(client, origin="https://evil.example", headers=SPOOF)
    assert r.status_code == 403
    r = get(client, origin=OWN, headers=SPOOF)
    assert r.status_code == 200
    assert "HTTP_X_FORWARDED_HOST" not in app.seen[0]
    assert app.seen[0]["REMOTE_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize("trusted", [1, ["127.0.0.1"], "127.0.0.0/8", "1"])
def test_forwarded_headers_from_trusted_proxies_are_applied_once(trusted):
    _, app, client = make(trusted_proxies=trusted)
    r = get(client, origin="https://evil.example", headers=SPOOF)
    assert r.status_code == 200, r.get_data(as_text=True)
    seen = app.seen[0]
    assert (seen["REMOTE_ADDR"], seen["wsgi.url_scheme"], seen["HTTP_HOST"]) == (
        "203.0.113.9", "https", "evil.example")
    assert r.headers["Strict-Transport-Security"] == "max-age=63072000"


def test_address_list_does_not_trust_other_peers():
    _, _, client = make(trusted_proxies=["10.0.0.0/8"])
    assert get(client, origin="https://evil.example", headers=SPOOF).status_code == 403


def test_garbage_from_a_trusted_proxy_is_a_400():
    _, app, client = make(trusted_proxies=1)
    r = get(client, headers={"X-Forwarded-For": "not-an-ip"})
    assert r.status_code == 400 and app.seen == []


@pytest.mark.parametrize("bad", [-1, True, ["nope"], {"a": 1}])
def test_bad_trusted_proxies_setting(bad):
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        make(trusted_proxies=bad)


def test_no_hsts_over_plain_http_and_configurable():
    _, _, client = make()
    assert "Strict-Transport-Security" not in get(client).headers
    _, _, client = make(hsts_max_age=0, trusted_proxies=1)
    r = get(client, headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in r.headers


# -- limits -----------------------------------------------------------------------
def test_post_without_length_is_411_and_oversized_is_413_before_the_app():
    _, app, client = make(max_http_buffer_size=100)
    path = "/socket.io/?EIO=4&transport=polling&sid=abc"
    chunked = client.post(path, input_stream=io.BytesIO(b"5\r\nxxxxx\r\n0\r\n\r\n"),
                          headers={"Transfer-Encoding": "chunked"})
    assert chunked.status_code == 411, chunked.status
    assert client.post(path, data=b"x" * 101).status_code == 413
    bad_length = client.post(path, data=b"x" * 10, environ_overrides={"CONTENT_LENGTH": "1e3"})
    assert bad_length.status_code == 400
    assert app.seen == []
    assert client.post(path, data=b"x" * 100).status_code == 200


def test_handshake_rate_is_429_with_retry_after():
    _, _, client = make(handshake_rate=1.0, handshake_burst=3)
    codes = [get(client).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = get(client)
    assert r.headers["Retry-After"] == "1"
    # requests of existing sessions are not handshakes
    assert get(client, HANDSHAKE + "&sid=x").status_code == 200
    # ...but Engine.IO reads an empty sid as none: a handshake, so limited
    assert get(client, HANDSHAKE + "&sid=").status_code == 429
    assert get(client, HANDSHAKE + "&sid").status_code == 429


def test_per_client_cap_counts_open_sessions():
    policy, _, client = make(max_connections_per_ip=2)
    for sid in ("a", "b"):
        policy.session_opened(sid, {"REMOTE_ADDR": "127.0.0.1"})
    r = get(client)
    assert r.status_code == 429 and "open connections" in r.get_data(as_text=True)
    policy.session_closed("a")
    policy.session_closed("a")  # idempotent
    assert get(client).status_code == 200
    assert policy.tally.counts() == (1, 1), "the refused and the unopened handshake freed"


def test_process_cap_is_503():
    policy, _, client = make(max_connections=1)
    policy.session_opened("a", {"REMOTE_ADDR": "10.1.1.1"})
    r = get(client)
    assert r.status_code == 503 and r.headers["Retry-After"]


def test_a_handshake_hands_its_slot_to_the_session():
    tally = ConnectionTally(per_client=1, total=None)
    slot = tally.reserve("x")
    assert tally.reserve("x") == "client"
    tally.opened("sid1", "x", slot)
    tally.release(slot)  # the response closes after the session opened
    assert tally.counts() == (1, 1)
    tally.closed("sid1")
    assert tally.counts() == (0, 0)


def test_token_bucket_refills_at_the_rate():
    now = [0.0]
    bucket = HandshakeRate(rate=2.0, burst=2, clock=lambda: now[0])
    assert [bucket.take("k") for _ in range(2)] == [0.0, 0.0]
    assert bucket.take("k") == pytest.approx(0.5)
    now[0] = 0.5
    assert bucket.take("k") == 0.0


def test_token_bucket_memory_is_bounded():
    bucket = HandshakeRate(rate=1.0, burst=1, max_clients=10, clock=lambda: 0.0)
    for i in range(100):
        bucket.take(str(i))
    assert len(bucket._buckets) <= 11


def test_default_max_connections_follows_the_fd_limit():
    resource = pytest.importorskip("resource")
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    expected = 10_000 if soft == resource.RLIM_INFINITY else max(1, (soft - 64) // 2)
    assert default_max_connections() == expected


def test_unknown_option_and_switch_off():
    with pytest.raises(ConfigurationError, match="Did you mean 'handshake_rate'"):
        make(handshake_rat=3)
    app = Recorder()
    assert wrap(app, {"security_policy": False}) is app
    assert isinstance(wrap(app, {}), SecurityPolicy)


def test_cross_site_loads_without_origin_and_jsonp_are_refused():
    _, app, client = make()
    r = get(client, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403, "a <script>/<img> load from another site"
    assert get(client, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert get(client, HANDSHAKE + "&j=0").status_code == 403, "JSONP has no Origin"
    assert len(app.seen) == 1


def test_vary_from_the_app_is_kept():
    def app(environ, start_response):
        start_response("200 OK", [("Vary", "Accept-Encoding")])
        return [b""]

    r = get(Client(SecurityPolicy(app)), origin=OWN)
    assert r.headers.getlist("Vary") == ["Accept-Encoding, Origin"]


def test_refusal_hints_at_trusted_proxies_when_forwarded_headers_were_dropped(caplog):
    _, _, client = make()
    with caplog.at_level(logging.WARNING, logger="server.security"):
        r = get(client, origin="https://localhost", headers={"X-Forwarded-Proto": "https"})
    assert r.status_code == 403
    assert "trusted_proxies" in caplog.text, caplog.text


header_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=80)


FUZZED = {str(trusted): SecurityPolicy(Recorder(), trusted_proxies=trusted, handshake_rate=None,
                                      max_connections_per_ip=None, max_connections=10**6)
          for trusted in (None, 1, ["127.0.0.1"])}


@settings(max_examples=200, deadline=None)
@given(origin=st.none() | header_text, host=header_text, query=header_text,
       length=st.none() | header_text, forwarded=st.none() | header_text,
       method=st.sampled_from(["GET", "POST", "OPTIONS", "PUT"]),
       trusted=st.sampled_from([None, 1, ["127.0.0.1"]]))
def test_any_header_values_get_an_answer_below_500(origin, host, query, length, forwarded,
                                                   method, trusted):
    policy = FUZZED[str(trusted)]
    environ = {"REQUEST_METHOD": method, "PATH_INFO": "/socket.io/", "QUERY_STRING": query,
               "HTTP_HOST": host, "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1",
               "SERVER_NAME": "localhost", "SERVER_PORT": "80"}
    for key, value in (("HTTP_ORIGIN", origin), ("CONTENT_LENGTH", length),
                       ("HTTP_X_FORWARDED_FOR", forwarded),
                       ("HTTP_X_FORWARDED_HOST", forwarded),
                       ("HTTP_X_FORWARDED_PROTO", forwarded)):
        if value is not None:
            environ[key] = value
    statuses = []
    body = policy(environ, lambda status, headers, exc_info=None: statuses.append(status))
    list(body)
    getattr(body, "close", lambda: None)()
    assert statuses and int(statuses[0][:3]) < 500, statuses


def test_wrap_takes_a_whole_resolved_settings_dict():
    from server import settings as server_settings

    options = server_settings.resolve(
        {"logger": True, "json": None, "ping_timeout": 5, "path": "/chat.io/",
         "cors_allowed_origins": ["https://app.example"], "handshake_burst": 1},
        scopes=("extension", "socketio", "security"), environ={})
    policy = wrap(Recorder(), options, logging.getLogger("test"))
    assert policy.config.path == "chat.io" and policy.config.handshake_burst == 1
    client = Client(policy)
    assert get(client, "/chat.io/?EIO=4&transport=polling",
               origin="https://evil.example").status_code == 403


def test_loopback_peers_are_exempt_from_per_address_limits_by_default():
    policy, _, client = make(handshake_rate=0.5, handshake_burst=1, max_connections_per_ip=1,
                             ip_limits_on_loopback=False)
    statuses = {get(client).status_code for _ in range(5)}
    assert statuses == {200}, "a local proxy's requests were throttled as one address"
    remote = {"REMOTE_ADDR": "192.0.2.7"}  # documentation range: never contacted
    assert get(client, environ_base=remote).status_code == 200
    assert get(client, environ_base=remote).status_code == 429
