"""The documentation site builds with warnings as errors and lists every page."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_site_builds_with_warnings_as_errors_and_links_every_page(tmp_path):
    pytest.importorskip("sphinx", reason="pip install 'server[docs]'")
    pytest.importorskip("myst_parser", reason="pip install 'server[docs]'")
    out = tmp_path / "html"
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"sphinx-build -W failed:\n{done.stderr}{done.stdout}"

    pages = sorted(p.relative_to(DOCS).with_suffix("").as_posix()
                   for pattern in ("*.md", "servers/*.md") for p in DOCS.glob(pattern))
    assert "index" in pages and "getting-started" in pages, pages
    index = (out / "index.html").read_text()
    linked = set(re.findall(r'href="([^"#]+)\.html', index))
    for page in pages:
        assert (out / f"{page}.html").exists(), f"no HTML for docs/{page}.md"
        if page != "index":
            assert page in linked, f"docs/{page}.md is not in the index's table of contents"
