"""docs/servers: one page per server, the same sections on each, configs included verbatim."""
from __future__ import annotations

import re

from .harness import ROOT

PAGES = ("gunicorn", "uwsgi", "waitress", "werkzeug")
SECTIONS = ["Install", "Run", "Configuration", "WebSocket", "Graceful shutdown", "TLS",
            "Limits"]


def test_every_server_page_has_the_same_sections():
    for page in PAGES:
        text = (ROOT / "docs" / "servers" / f"{page}.md").read_text()
        assert re.findall(r"^## (.+)$", text, re.MULTILINE) == SECTIONS, f"docs/servers/{page}.md"


def test_shipped_configs_are_included_verbatim():
    for page, config in (("gunicorn", "gunicorn.conf.py"), ("uwsgi", "uwsgi.ini")):
        text = (ROOT / "docs" / "servers" / f"{page}.md").read_text()
        assert f"```{{literalinclude}} ../../{config}" in text, f"{page}.md lacks {config}"
