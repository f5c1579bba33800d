"""Flask-Login's current_user inside Socket.IO handlers."""
from flask import Flask
from flask_login import LoginManager, UserMixin, current_user, login_user

from server import SocketIO


class User(UserMixin):
    def __init__(self, uid):
        self.id = uid


def _app():
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "k"
    login = LoginManager(app)
    login.user_loader(User)
    socketio = SocketIO(app)

    @app.route("/login/<uid>")
    def do_login(uid):
        login_user(User(uid))
        return "ok"

    @socketio.on("connect")
    def connect():
        if not current_user.is_authenticated:
            return False
        return None

    @socketio.on("me")
    def me():
        return current_user.id

    return app, socketio


def test_current_user_is_the_http_login():
    app, socketio = _app()
    with app.test_client() as http:
        http.get("/login/alice")
        client = socketio.test_client(app, flask_test_client=http)
        assert client.is_connected()
        assert client.emit("me", callback=True) == "alice"


def test_anonymous_user_is_refused():
    app, socketio = _app()
    client = socketio.test_client(app)
    assert not client.is_connected()
