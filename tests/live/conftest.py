"""Fixtures of the live matrix: one server per kind (module scope), crossed with transports.

``live_server`` starts each server kind once for the whole matrix module and
``transports`` crosses it with the three transport cells, so pytest runs
every test of the matrix against every server × transport pair while
starting each server only once.  The server's log is attached to the report
of any failing test that used it.
"""
from __future__ import annotations

import shutil

import pytest

from .harness import SERVERS, TRANSPORTS, LiveServer, running


def _unavailable(kind) -> str | None:
    if "uwsgi" in kind.needs and shutil.which("uwsgi") is None:
        from .harness import BIN

        if not (BIN / "uwsgi").exists():
            return "uWSGI is not installed (pip install uwsgi)"
    return None


@pytest.fixture(scope="module", params=sorted(SERVERS))
def live_server(request, tmp_path_factory):
    kind = SERVERS[request.param]
    why = _unavailable(kind)
    if why:
        pytest.skip(why)
    with running(kind, tmp_path_factory.mktemp(kind.name)) as server:
        yield server
    if server.proc is not None and server.proc.returncode not in (0, -15, 143):
        # SIGTERM must stop every server cleanly; print what it said if not
        print(f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}")


@pytest.fixture(params=sorted(TRANSPORTS))
def transports(request):
    return TRANSPORTS[request.param]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, LiveServer):
                report.sections.append((f"server log: {value.name}", value.log_tail(200)))
