"""server.tls: SSLContext profiles, start-up validation, HSTS, gunicorn's hook."""
from __future__ import annotations

import datetime
import inspect
import logging
import os
import ssl
import types

import pytest

pytest.importorskip("cryptography")

import cryptography

from server import tls
from server.errors import ConfigurationError
from server.tls_certs import cert_pem, make_leaf, selfsigned, write_file

NOW = datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture
def issued(tmp_path):
    return selfsigned(str(tmp_path / "tls"))


def test_supported_versions_pinned():
    # tls_chain relies on cryptography.x509.verification (42+) and *_utc datetimes (42+);
    # the hook relies on gunicorn's ssl_context(config, factory) hook (21+) and
    # on its certfile/keyfile/ca_certs/cert_reqs/ciphers/http_protocols settings.
    assert tuple(int(p) for p in cryptography.__version__.split(".")[:2]) >= (42, 0)
    gunicorn_config = pytest.importorskip("gunicorn.config")
    cfg = gunicorn_config.Config()
    for name in ("ssl_context", "certfile", "keyfile", "ca_certs", "cert_reqs", "ciphers",
                 "http_protocols"):
        assert name in cfg.settings, f"gunicorn {name!r} setting is gone"
    hook = tls.GunicornSSLContext()
    cfg.set("ssl_context", hook)  # gunicorn checks the hook's arity (2) here
    assert cfg.ssl_context is hook
    default = cfg.settings["ssl_context"].default
    assert list(inspect.signature(default).parameters) == ["config",
                                                           "default_ssl_context_factory"]


@pytest.mark.parametrize("profile, minimum", [("intermediate", ssl.TLSVersion.TLSv1_2),
                                              ("modern", ssl.TLSVersion.TLSv1_3)])
def test_profile_options(issued, profile, minimum):
    ctx = tls.make_ssl_context(issued.cert, issued.key, profile=profile)
    assert ctx.minimum_version == minimum
    assert ctx.options & ssl.OP_NO_COMPRESSION
    assert ctx.options & ssl.OP_NO_RENEGOTIATION
    assert not ctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE
    assert ctx.verify_mode == ssl.CERT_NONE
    tls12 = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == set(tls.INTERMEDIATE_TLS12_CIPHERS)


def test_cipher_constants():
    assert tls.INTERMEDIATE_CIPHERS.split(":") == list(tls.INTERMEDIATE_TLS12_CIPHERS)
    assert not set(tls.EXCLUDED_DHE_CIPHERS) & set(tls.INTERMEDIATE_TLS12_CIPHERS)
    assert all("GCM" in c or "CHACHA20" in c for c in tls.INTERMEDIATE_TLS12_CIPHERS)


def test_client_certificates(issued):
    ctx = tls.make_ssl_context(issued.cert, issued.key, ca_certs=issued.ca,
                               cert_reqs=ssl.CERT_REQUIRED)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(ConfigurationError, match="ca_certs is not set"):
        tls.make_ssl_context(issued.cert, issued.key, cert_reqs=ssl.CERT_REQUIRED)


def test_unknown_profile(issued):
    with pytest.raises(ConfigurationError, match=r"'old'.*fix: use one of intermediate, modern"):
        tls.make_ssl_context(issued.cert, issued.key, profile="old")


def test_make_context_explains_a_mismatched_key(issued):
    with pytest.raises(ConfigurationError) as err:
        tls.make_ssl_context(issued.cert, issued.ca_key)
    message = str(err.value)
    assert "key-match" in message and issued.ca_key in message and "fix:" in message


def test_hsts_header():
    assert tls.hsts_header() == "max-age=63072000"
    assert tls.hsts_header(31536000, include_subdomains=True, preload=True) == (
        "max-age=31536000; includeSubDomains; preload")
    with pytest.raises(ConfigurationError, match="include_subdomains=True"):
        tls.hsts_header(preload=True)
    with pytest.raises(ConfigurationError, match="max_age=-1"):
        tls.hsts_header(-1)


# --- validate_for_startup ------------------------------------------------------------


def test_startup_accepts_good_pair(issued):
    tls.validate_for_startup(issued.cert, issued.key, ca=issued.ca)


def expect_refusal(certfile, keyfile, *words, ca=None):
    with pytest.raises(ConfigurationError) as err:
        tls.validate_for_startup(certfile, keyfile, ca=ca)
    message = str(err.value)
    assert "\n" not in message and "fix:" in message, message
    for word in words:
        assert word in message, f"expected {word!r} in {message!r}"


def test_startup_refuses_missing_file(issued, tmp_path):
    missing = str(tmp_path / "missing.pem")
    expect_refusal(missing, issued.key, missing, "does not exist")
    expect_refusal(issued.cert, missing, missing, "does not exist")
    expect_refusal(issued.cert, issued.key, missing, "does not exist", ca=missing)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_startup_refuses_unreadable_key(issued):
    os.chmod(issued.key, 0)
    expect_refusal(issued.cert, issued.key, issued.key, "not readable")


def test_startup_refuses_mismatched_key(issued):
    expect_refusal(issued.cert, issued.ca_key, issued.ca_key, "does not belong")


def test_startup_refuses_expired_certificate(issued, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    with open(issued.ca, "rb") as fh:
        ca = x509.load_pem_x509_certificate(fh.read())
    with open(issued.ca_key, "rb") as fh:
        ca_key = serialization.load_pem_private_key(fh.read(), password=None)
    with open(issued.key, "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), password=None)
    old = make_leaf(ca, ca_key, key, ["localhost"], NOW - datetime.timedelta(days=90),
                    not_after=NOW - datetime.timedelta(days=2))
    expired = str(tmp_path / "expired.pem")
    write_file(expired, cert_pem(old), 0o644)
    expect_refusal(expired, issued.key, expired, "expired on", "renew")


def test_startup_refuses_world_readable_key(issued):
    os.chmod(issued.key, 0o644)
    expect_refusal(issued.cert, issued.key, issued.key, "world-readable", "chmod 600")


# --- gunicorn hook --------------------------------------------------------------------


def gunicorn_conf(issued, **overrides):
    values = {"certfile": issued.cert, "keyfile": issued.key, "ca_certs": None,
              "cert_reqs": ssl.CERT_NONE, "ciphers": None, "http_protocols": ["h1"]}
    values.update(overrides)
    return types.SimpleNamespace(**values)


def no_default_factory():
    raise AssertionError("the hook must not fall back to gunicorn's default context")


def test_hook_caches_and_reloads_renewed_certificate(issued, tmp_path):
    hook = tls.GunicornSSLContext(profile="modern")
    conf = gunicorn_conf(issued)
    first = hook(conf, no_default_factory)
    assert first.minimum_version == ssl.TLSVersion.TLSv1_3
    assert hook(conf, no_default_factory) is first
    selfsigned(os.path.dirname(issued.cert), hosts=["renewed.test"])  # files replaced
    assert hook(conf, no_default_factory) is not first


def test_hook_keeps_serving_when_renewal_is_broken(issued, caplog):
    hook = tls.GunicornSSLContext()
    conf = gunicorn_conf(issued)
    first = hook(conf, no_default_factory)
    with open(issued.ca_key, "rb") as src:  # the key replaced by one that does not match
        write_file(issued.key, src.read(), 0o600)
    with caplog.at_level(logging.ERROR, logger="server.tls"):
        assert hook(conf, no_default_factory) is first
        assert hook(conf, no_default_factory) is first
    errors = [r for r in caplog.records if r.name == "server.tls"]
    assert len(errors) == 1 and "does not belong" in errors[0].getMessage()


def test_hook_refuses_bad_first_configuration(issued):
    with pytest.raises(ConfigurationError, match="ciphers='HIGH'"):
        tls.GunicornSSLContext()(gunicorn_conf(issued, ciphers="HIGH"), no_default_factory)
    with pytest.raises(ConfigurationError, match="world-readable"):
        os.chmod(issued.key, 0o644)
        tls.GunicornSSLContext()(gunicorn_conf(issued), no_default_factory)
    with pytest.raises(ConfigurationError, match="unknown"):
        tls.GunicornSSLContext(profile="legacy")




def test_gunicorn_config_check_sees_the_worker_user(issued):
    nobody = 65534
    cfg = types.SimpleNamespace(certfile=issued.cert, keyfile=issued.key, ca_certs=None,
                                ciphers=None, uid=nobody, gid=nobody, initgroups=False)
    if os.stat(issued.key).st_uid == nobody:
        pytest.skip("the test user is uid 65534 itself")
    with pytest.raises(ConfigurationError) as err:
        tls.check_gunicorn_config(cfg)
    assert issued.key in str(err.value) and f"uid {nobody}" in str(err.value)
    if os.geteuid() != 0:
        return  # only root can hand the file to another group; the refusal is what matters
    os.chown(issued.key, -1, nobody)
    os.chmod(issued.key, 0o640)
    tls.check_gunicorn_config(cfg)
    cfg.ciphers = "HIGH"
    with pytest.raises(ConfigurationError, match="ciphers='HIGH'"):
        tls.check_gunicorn_config(cfg)
