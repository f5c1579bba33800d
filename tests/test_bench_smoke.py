"""bench/run.py parses its arguments (the benchmark itself is never run by the suite)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent.parent / "bench" / "run.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUN), *args], capture_output=True, text=True,
                          timeout=30)


def test_help_lists_quick_and_servers():
    out = _run("--help")
    assert out.returncode == 0, f"expected exit 0 from --help, got {out.returncode}: {out.stderr}"
    for word in ("--quick", "--only", "ours-gunicorn", "fsio-eventlet", "node"):
        assert word in out.stdout, f"expected {word!r} in --help output, got:\n{out.stdout}"


def test_unknown_server_is_named_with_the_choices():
    out = _run("--only", "ours-gunicorn,nosuch")
    assert out.returncode == 2, f"expected exit 2, got {out.returncode}: {out.stderr}"
    assert "nosuch" in out.stderr and "fsio-eventlet" in out.stderr, (
        f"expected the bad name and the choices in the error, got: {out.stderr}")

