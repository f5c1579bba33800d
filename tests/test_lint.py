"""ruff (pyflakes, pycodestyle, isort, bugbear, pyupgrade) is clean on the code we ship and test."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it is in the test extra)")
    done = subprocess.run([ruff, "check", "server", "tests", "bench", "wsgi.py",
                           "gunicorn.conf.py"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"ruff found problems:\n{done.stdout}{done.stderr}"
