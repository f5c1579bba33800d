"""Origin parsing and matching: exact, normalised, no suffix or scheme tricks."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.security_origin import MAX_ORIGIN_LENGTH, Origin, OriginError, parse_origin


@pytest.mark.parametrize("text, expected", [
    ("https://example.com", Origin("https", "example.com", 443)),
    ("https://example.com:443", Origin("https", "example.com", 443)),
    ("HTTPS://Example.COM", Origin("https", "example.com", 443)),
    ("http://example.com:80", Origin("http", "example.com", 80)),
    ("http://127.0.0.1:5000", Origin("http", "127.0.0.1", 5000)),
    ("http://[::1]:8080", Origin("http", "[::1]", 8080)),
    ("http://localhost", Origin("http", "localhost", 80)),
])
def test_valid_origins_normalise(text, expected):
    assert parse_origin(text) == expected


@pytest.mark.parametrize("text", [
    "null", "", "example.com", "https://", "https://example.com/",
    "https://example.com/path", "https://user@example.com", "https://u:p@example.com",
    "https://example.com?x=1", "https://example.com#f", "https://example.com:0",
    "https://example.com:65536", "https://example.com:http", "https://exa mple.com",
    "https://example.com, https://other.com", "https://exämple.com",
    "https://example..com", "http://[::1", "http://[nothex]:80", "custom://host",
    "https://" + "a" * MAX_ORIGIN_LENGTH, "https://example.com\r\nX: y",
    "https://-example.com", "https://example.com\\@evil.com",
])
def test_malformed_origins_are_refused(text):
    with pytest.raises(OriginError):
        parse_origin(text)


@pytest.mark.parametrize("other", [
    "https://example.com.evil.com",   # suffix-match trick
    "https://evilexample.com",        # substring trick
    "https://evil.com",
    "http://example.com",             # scheme only
    "https://example.com:8443",       # port only
    "https://sub.example.com",        # subdomain
])
def test_near_misses_are_different_origins(other):
    assert parse_origin(other) != parse_origin("https://example.com")


labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hosts = st.lists(labels, min_size=1, max_size=4).map(".".join)
schemes = st.sampled_from(["http", "https"])
ports = st.integers(min_value=1, max_value=65535)


@given(schemes, hosts, ports)
def test_round_trip_is_the_identity(scheme, host, port):
    origin = parse_origin(f"{scheme}://{host}:{port}")
    assert origin == Origin(scheme, host, port)
    assert parse_origin(str(origin)) == origin


@given(schemes, hosts, ports, hosts)
def test_suffixes_never_match(scheme, host, port, suffix):
    base = parse_origin(f"{scheme}://{host}:{port}")
    assert parse_origin(f"{scheme}://{host}.{suffix}:{port}") != base


@given(schemes, hosts, ports, st.sampled_from(["/", "/x", "?q", "#f"]))
def test_anything_after_the_authority_is_refused(scheme, host, port, tail):
    with pytest.raises(OriginError):
        parse_origin(f"{scheme}://{host}:{port}{tail}")


@given(st.text(max_size=300))
def test_parse_never_raises_anything_but_origin_error(text):
    try:
        origin = parse_origin(text)
    except OriginError:
        return
    assert isinstance(origin, Origin) and len(text) <= MAX_ORIGIN_LENGTH
