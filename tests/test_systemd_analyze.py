"""The rendered units pass ``systemd-analyze verify`` silently and score as hardened.

``systemd-analyze verify`` exits 0 even on unknown keys (it only prints), so
any output at all is a failure.  The units are rendered with --prefix set to
this interpreter's prefix, so the ExecStart binaries verify checks exist.
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from server import cli

ANALYZE = shutil.which("systemd-analyze")
REPO = pathlib.Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze not installed (Debian package: systemd)")

MAX_EXPOSURE = 1.5
#: name -> extra render arguments; every one must verify and score <= MAX_EXPOSURE
VARIANTS = {
    "gunicorn": (),
    "uwsgi": ("--server", "uwsgi"),
    "socket": ("--socket",),
    "gunicorn-any-ip": ("--ip-allow", "any"),
    "gunicorn-remote-proxy": ("--bind", "0.0.0.0:5000", "--ip-allow", "localhost",
                              "--ip-allow", "10.0.0.0/8"),
    "gunicorn-unix": ("--bind", "unix:/run/server-gunicorn/server.sock"),
    "gunicorn-dynamic-user": ("--dynamic-user",),
    "uwsgi-any-ip": ("--server", "uwsgi", "--ip-allow", "any"),
}
_SCORE = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)")


def render(out: pathlib.Path, *extra: str) -> list[pathlib.Path]:
    out.mkdir(parents=True, exist_ok=True)
    if "uwsgi" in extra and not os.access(pathlib.Path(sys.prefix, "bin", "uwsgi"), os.X_OK):
        pytest.skip(f"uWSGI is not installed in {sys.prefix} (pip install uwsgi)")
    code = cli.main(["systemd", "render", "--prefix", sys.prefix, "--user", "server",
                     "--workdir", str(REPO), *extra, "--out", str(out)])
    assert code == 0, f"render {extra} exited {code}"
    return sorted(p for p in out.iterdir() if p.suffix in (".service", ".socket"))


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run([ANALYZE, *args], capture_output=True, text=True, timeout=60,
                          check=False)


def exposure(unit: pathlib.Path) -> float:
    done = analyze("security", "--offline=true", str(unit))
    match = _SCORE.search(done.stdout)
    assert match, (f"no 'Overall exposure level' line for {unit.name}: "
                   f"rc={done.returncode} stdout={done.stdout!r} stderr={done.stderr!r}")
    return float(match.group(1))


@pytest.mark.parametrize("variant", VARIANTS)
def test_verify_prints_nothing(tmp_path, variant):
    for unit in render(tmp_path, *VARIANTS[variant]):
        done = analyze("verify", str(unit))
        said = (done.stdout + done.stderr).strip()
        assert done.returncode == 0 and not said, (
            f"systemd-analyze verify {unit.name} ({variant}) should be silent; "
            f"rc={done.returncode}, said:\n{said}")


def test_verify_check_would_catch_a_typo(tmp_path):
    """The silent-verify assertion above is meaningful: a typo makes verify talk."""
    unit = next(u for u in render(tmp_path) if u.name == "server-gunicorn.service")
    unit.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHom=yes"))
    done = analyze("verify", str(unit))
    assert "ProtectHom" in done.stdout + done.stderr, (
        f"verify did not report an unknown key: {done.stdout!r} {done.stderr!r}")


@pytest.mark.parametrize("variant", VARIANTS)
def test_exposure_score_is_low(tmp_path, variant):
    for unit in render(tmp_path, *VARIANTS[variant]):
        if unit.suffix != ".service":
            continue  # the score rates services; a socket unit runs nothing
        score = exposure(unit)
        assert score <= MAX_EXPOSURE, (
            f"{unit.name} ({variant}) exposure {score}, expected <= {MAX_EXPOSURE}; "
            f"see systemd-analyze security --offline=true {unit}")


def test_socket_activated_service_scores_lowest(tmp_path):
    plain = exposure(render(tmp_path / "plain")[0])
    activated = exposure(next(u for u in render(tmp_path / "sock", "--socket")
                              if u.name == "server.service"))
    assert activated < plain, (
        f"socket-activated server.service scored {activated}, plain gunicorn {plain}; "
        f"expected the network-less one lower")
