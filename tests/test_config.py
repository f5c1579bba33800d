"""Bad configuration fails at start-up, naming the option, the value and the fix."""
import pytest
from flask import Flask

from server import ConfigurationError, SocketIO, settings


def test_unknown_option_has_did_you_mean():
    with pytest.raises(ConfigurationError) as info:
        SocketIO(Flask(__name__), cors_allowed_origin=["http://a.example"])
    message = str(info.value)
    assert "cors_allowed_origin" in message
    assert "Did you mean 'cors_allowed_origins'?" in message


def test_unknown_option_deferred_to_init_app_fails_at_construction():
    with pytest.raises(ConfigurationError, match="ping_intervall"):
        SocketIO(ping_intervall=5)


@pytest.mark.parametrize("mode", ["eventlet", "gevent", "gevent_uwsgi", "asgi"])
def test_async_mode_other_than_threading_is_refused(mode):
    with pytest.raises(ConfigurationError) as info:
        SocketIO(Flask(__name__), async_mode=mode)
    message = str(info.value)
    assert "async_mode" in message and repr(mode) in message
    assert "native threads" in message


def test_async_mode_threading_is_accepted():
    socketio = SocketIO(Flask(__name__), async_mode="threading")
    assert socketio.async_mode == "threading"


@pytest.mark.parametrize("name,value,needle", [
    ("ping_timeout", -1, "greater than zero"),
    ("ping_interval", "fast", "positive number"),
    ("max_http_buffer_size", 0, "greater than zero"),
    ("transports", ["carrier-pigeon"], "polling"),
    ("manage_session", "yes", "True or False"),
    ("message_queue", "http://localhost", "redis://"),
    ("cors_allowed_origins", 42, "origin"),
])
def test_bad_values_name_setting_value_and_fix(name, value, needle):
    with pytest.raises(ConfigurationError) as info:
        SocketIO(Flask(__name__), **{name: value})
    message = str(info.value)
    assert name in message and repr(value) in message and needle in message
    assert "Fix:" in message


def test_init_app_merges_deferred_options_later_wins():
    socketio = SocketIO(ping_timeout=5, ping_interval=10)
    app = Flask(__name__)
    socketio.init_app(app, ping_timeout=7)
    assert socketio.server.eio.ping_timeout == 7
    assert socketio.server.eio.ping_interval == 10
    assert app.extensions["socketio"] is socketio


def test_path_and_resource_options():
    app = Flask(__name__)
    socketio = SocketIO(app, path="/custom/")
    assert socketio.sockio_mw.engineio_path == "/custom/"
    app2 = Flask(__name__)
    socketio2 = SocketIO(app2, resource="legacy")
    assert socketio2.sockio_mw.engineio_path == "/legacy/"


def test_forwarded_options_reach_python_socketio_and_engineio():
    socketio = SocketIO(Flask(__name__), ping_interval=(10, 2), max_http_buffer_size=1234,
                        always_connect=True, transports=["websocket"],
                        cors_allowed_origins=["https://a.example"], cookie="io",
                        allow_upgrades=False, http_compression=False,
                        compression_threshold=10, async_handlers=False,
                        monitor_clients=False, channel="c", manage_session=False)
    eio = socketio.server.eio
    assert (eio.ping_interval, eio.ping_interval_grace_period) == (10, 2)
    assert eio.max_http_buffer_size == 1234
    assert eio.transports == ["websocket"]
    # origins are the security policy's job; Engine.IO's own check is off
    assert eio.cors_allowed_origins == []
    assert eio.cookie == "io" and eio.allow_upgrades is False
    assert eio.http_compression is False and eio.compression_threshold == 10
    assert socketio.server.always_connect is True
    assert socketio.server.async_handlers is False
    assert socketio.manage_session is False


def test_environment_fills_options_not_given_in_code(monkeypatch):
    monkeypatch.setenv("SERVER_PING_TIMEOUT", "3")
    monkeypatch.setenv("SERVER_MAX_HTTP_BUFFER_SIZE", "2048")
    socketio = SocketIO(Flask(__name__), max_http_buffer_size=4096)
    assert socketio.server.eio.ping_timeout == 3.0
    assert socketio.server.eio.max_http_buffer_size == 4096  # code wins


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("SERVER_PING_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="SERVER_PING_TIMEOUT='soon'"):
        SocketIO(Flask(__name__))


def test_message_queue_needs_its_package():
    try:
        import kafka  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover
        pytest.skip("kafka-python is installed here")
    with pytest.raises(ConfigurationError, match=r"server\[kafka\]"):
        SocketIO(message_queue="kafka://localhost:9092")


def test_emit_before_init_app_says_what_to_do():
    socketio = SocketIO()
    with pytest.raises(RuntimeError, match="init_app"):
        socketio.emit("x")


def test_emit_unknown_keyword_has_hint():
    socketio = SocketIO(Flask(__name__))
    with pytest.raises(TypeError, match="Did you mean 'namespace'"):
        socketio.emit("x", namespce="/")


def test_settings_doc_lists_every_setting():
    table = settings.markdown_table()
    for setting in settings.SETTINGS:
        assert f"`{setting.name}`" in table


def test_cors_allowed_origins_reach_engineio_when_the_policy_is_off():
    socketio = SocketIO(Flask(__name__), security_policy=False,
                        cors_allowed_origins=["https://a.example"])
    assert socketio.server.eio.cors_allowed_origins == ["https://a.example"]


def test_any_origin_needs_an_explicit_opt_in():
    with pytest.raises(ConfigurationError, match="allow_any_origin=True"):
        SocketIO(Flask(__name__), cors_allowed_origins="*")
    SocketIO(Flask(__name__), cors_allowed_origins="*", allow_any_origin=True,
             cors_credentials=False)
