"""``python -m server systemd render``: arguments, derived values, shipped files."""
from __future__ import annotations

import pathlib
import re

import pytest

from server import cli, settings
from server import systemd_units as su

REPO = pathlib.Path(__file__).resolve().parent.parent
SHIPPED_DIR = REPO / "systemd"


def render(tmp_path: pathlib.Path, *args: str) -> dict[str, str]:
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    code = cli.main(["systemd", "render", *args, "--out", str(out)])
    assert code == 0, f"render {args} exited {code}, expected 0"
    return {p.name: p.read_text() for p in out.iterdir()}


def unit_values(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def test_shipped_files_are_the_render_of_the_documented_defaults(tmp_path):
    expected: dict[str, str] = {}
    for variant in su.SHIPPED_VARIANTS:
        expected.update(render(tmp_path, *su.SHIPPED_ARGS, *variant))
    shipped = {p.name: p.read_text() for p in SHIPPED_DIR.iterdir()}
    fix = "; ".join(
        " ".join(("python -m server systemd render", *su.SHIPPED_ARGS, *v, "--out systemd"))
        for v in su.SHIPPED_VARIANTS)
    assert sorted(shipped) == sorted(expected), (
        f"systemd/ holds {sorted(shipped)}, render gives {sorted(expected)}; fix: {fix}")
    stale = [name for name in expected if shipped[name] != expected[name]]
    assert not stale, f"systemd/{stale} differ from a fresh render; fix: {fix}"


def test_default_layout_is_gunicorn_with_env_file(tmp_path):
    files = render(tmp_path, "--prefix", "/opt/x", "--user", "web")
    assert sorted(files) == ["server-gunicorn.service", "server.env"]
    unit = files["server-gunicorn.service"]
    assert unit_values(unit, "ExecStart") == [
        ("/opt/x/bin/gunicorn -c /opt/server/app/gunicorn.conf.py "
         "--worker-tmp-dir /run/server-gunicorn wsgi:app")]
    assert unit_values(unit, "User") == ["web"]
    assert unit_values(unit, "EnvironmentFile") == ["/etc/server/server.env"]
    assert "XDG_RUNTIME_DIR=/run/server-gunicorn" in unit_values(unit, "Environment")


def test_uwsgi_and_socket_layouts(tmp_path):
    files = render(tmp_path, "--prefix", "/opt/x", "--user", "web", "--server", "uwsgi",
                   "--workdir", "/srv/app", "--app", "chat.wsgi:application")
    uwsgi = files["server-uwsgi.service"]
    assert unit_values(uwsgi, "ExecStart") == [
        ("/opt/x/bin/uwsgi --ini /srv/app/uwsgi.ini --master --die-on-term "
         "--module chat.wsgi:application")]
    assert unit_values(uwsgi, "KillSignal") == ["SIGTERM"]

    socket_files = render(tmp_path / "s", "--prefix", "/opt/x", "--user", "web", "--socket",
                          "--bind", "0.0.0.0:80", "--ip-allow", "10.0.0.0/8")
    assert {"server.socket", "server.service"} <= set(socket_files)
    sock = socket_files["server.socket"]
    assert unit_values(sock, "ListenStream") == ["0.0.0.0:80"]
    assert unit_values(sock, "IPAddressAllow") == ["10.0.0.0/8"]
    service = socket_files["server.service"]
    assert unit_values(service, "PrivateNetwork") == ["yes"]
    assert unit_values(service, "RestrictAddressFamilies") == ["AF_UNIX"]
    assert unit_values(service, "Requires") == ["server.socket"]


def test_limits_follow_the_connection_cap_and_graceful_timeout(tmp_path):
    files = render(tmp_path, "--prefix", "/opt/x", "--user", "web",
                   "--max-connections", "500", "--graceful-timeout", "30.5")
    unit = files["server-gunicorn.service"]
    assert unit_values(unit, "LimitNOFILE") == [str(2 * 500 + 1024)]
    assert unit_values(unit, "TimeoutStopSec") == ["41"], "graceful 30.5 s + 10 s, rounded up"
    env = files["server.env"]
    assert "SERVER_MAX_CONNECTIONS=500" in env.splitlines()
    assert "SERVER_GRACEFUL_TIMEOUT=30.5" in env.splitlines()


def test_env_file_reads_back_through_the_settings_table(tmp_path):
    env = render(tmp_path, "--prefix", "/opt/x", "--user", "web", "--bind",
                 "127.0.0.1:8001", "--threads", "7")["server.env"]
    environ, listed = {}, set()
    for line in env.splitlines():
        body = line[1:] if line.startswith("#SERVER_") else line
        if body.startswith("SERVER_"):
            name, _, value = body.partition("=")
            listed.add(name)
            if body is line:
                environ[name] = value
    declared = {s.env_var for s in settings.SETTINGS if s.env_var}
    assert listed == declared, f"env file lists {sorted(listed ^ declared)} wrongly"
    assert settings.server_value("bind", environ) == "127.0.0.1:8001"
    assert settings.server_value("threads", environ) == 7
    assert settings.server_value("max_connections", environ) == su.DEFAULT_MAX_CONNECTIONS
    assert settings.server_value("graceful_timeout", environ) == (
        settings.BY_NAME["graceful_timeout"].default)


def test_unix_bind_gets_chown_back(tmp_path):
    unit = render(tmp_path, "--prefix", "/opt/x", "--user", "web", "--bind",
                  "unix:/run/server-gunicorn/server.sock")["server-gunicorn.service"]
    assert unit_values(unit, "SystemCallFilter")[-1] == "@chown"


@pytest.mark.parametrize("args, names", [
    (["--prefix", "opt/venv"], ["--prefix", "absolute"]),
    (["--prefix", "/opt/my venv"], ["--prefix", "spaces"]),
    (["--prefix", "/opt/%i"], ["--prefix", "'%'"]),
    (["--workdir", "/srv/../etc"], ["--workdir", "'..'"]),
    (["--user", "root"], ["--user", "useradd --system"]),
    (["--user", "Web User"], ["--user", "system user name"]),
    (["--app", "src/wsgi.py"], ["--app", "MODULE:CALLABLE"]),
    (["--server", "nginx"], ["--server", "gunicorn, uwsgi"]),
    (["--socket", "--server", "uwsgi"], ["--socket", "--server gunicorn"]),
    (["--bind", "localhost:5000"], ["--bind", "IP address"]),
    (["--bind", "127.0.0.1:70000"], ["--bind", "HOST:PORT"]),
    (["--bind", "127.0.0.1:80"], ["--bind", "CAP_NET_BIND_SERVICE", "--socket"]),
    (["--bind", "0.0.0.0:5000"], ["--bind", "--ip-allow"]),
    (["--bind", "unix:/tmp/s.sock"], ["--bind", "unix:/run/server-gunicorn/server.sock"]),
    (["--ip-allow", "10.0.0.300"], ["--ip-allow", "prefix"]),
    (["--ip-allow", "any", "--ip-allow", "localhost"], ["--ip-allow", "cannot be combined"]),
    (["--threads", "0"], ["--threads", "greater than zero"]),
    (["--max-connections", "-5"], ["--max-connections", "greater than zero"]),
    (["--graceful-timeout", "nan"], ["--graceful-timeout", "positive"]),
])
def test_bad_arguments_are_named_with_a_fix(tmp_path, capsys, args, names):
    base = {"--prefix": "/opt/x", "--user": "web"}
    for flag in list(base):
        if flag in args:
            del base[flag]
    argv = ["systemd", "render", *[x for kv in base.items() for x in kv], *args,
            "--out", str(tmp_path)]
    assert cli.main(argv) == 2, f"{args} was accepted, expected exit 2"
    err = capsys.readouterr().err
    for name in names:
        assert name in err, f"error for {args} should mention {name!r}; got: {err}"
    assert list(tmp_path.iterdir()) == [], "nothing is written when an argument is wrong"


def test_missing_out_dir_is_reported(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert cli.main(["systemd", "render", "--prefix", "/opt/x", "--user", "web",
                     "--out", str(missing)]) == 2
    assert "mkdir -p" in capsys.readouterr().err


def test_privileged_port_is_fine_when_systemd_binds_it(tmp_path):
    files = render(tmp_path, "--prefix", "/opt/x", "--user", "web", "--socket",
                   "--bind", "127.0.0.1:80")
    assert unit_values(files["server.socket"], "ListenStream") == ["127.0.0.1:80"]


def test_required_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["systemd", "render", "--user", "web"])
    assert exc.value.code == 2
    assert "--prefix" in capsys.readouterr().err


def test_docs_include_the_shipped_units_verbatim():
    doc = (REPO / "docs" / "systemd.md").read_text()
    blocks = re.findall(r"<!-- file: (\S+) -->\n```ini\n(.*?)```\n", doc, flags=re.DOTALL)
    assert len(blocks) >= 3, "docs/systemd.md should quote the shipped units"
    for path, text in blocks:
        assert text == (REPO / path).read_text(), (
            f"docs/systemd.md quotes an old {path}; fix: paste the current file in")


@pytest.mark.parametrize("flag", ["--prefix", "--workdir"])
def test_paths_hidden_by_protect_home_are_refused(tmp_path, capsys, flag):
    argv = {"--prefix": "/opt/x", "--workdir": "/opt/app", flag: "/home/deploy/app"}
    assert cli.main(["systemd", "render", "--user", "web", "--out", str(tmp_path),
                     *[x for kv in argv.items() for x in kv]]) == 2
    err = capsys.readouterr().err
    assert flag in err and "ProtectHome" in err and "/opt" in err, err


def test_systemd_without_an_action_says_how_to_render(capsys):
    assert cli.main(["systemd"]) == 2
    assert "systemd render --prefix PREFIX --user USER" in capsys.readouterr().err
