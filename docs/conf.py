"""Sphinx configuration: ``sphinx-build -W -b html docs docs/_build/html``.

Pages are Markdown (MyST).  ``index.md`` lists them with glob toctrees, so a
page added to docs/ or docs/servers/ is included without editing anything
here; tests/test_sphinx.py builds the site with warnings as errors.
"""
from __future__ import annotations

import fnmatch
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # `server`

from server import __version__

project = "server"
author = "the server authors"
copyright = "the server authors"
version = release = __version__

extensions = ["myst_parser"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**/node_modules"]

# MyST: `#section` links to headings, fenced ``{directive}`` blocks, colon fences
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]


def _drop_unmatched_globs(app, docname, source):
    """Leave out of the root page a toctree glob that matches no page yet.

    ``servers/*`` lists the per-server deployment pages; until one exists,
    Sphinx would warn (and ``-W`` fail).  Only globs are dropped, only when
    nothing matches them: a misspelt explicit entry still fails the build.
    """
    if docname != root_doc:
        return
    others = [d for d in app.env.found_docs if d != docname]
    kept, in_toctree = [], False
    for line in source[0].splitlines(keepends=True):
        entry = line.strip()
        if entry.startswith("```"):
            in_toctree = entry == "```{toctree}"
        elif (in_toctree and "*" in entry and not entry.startswith(":")
              and not any(fnmatch.fnmatchcase(d, entry) for d in others)):
            continue
        kept.append(line)
    source[0] = "".join(kept)


def setup(app):
    app.connect("source-read", _drop_unmatched_globs)
    return {"parallel_read_safe": True}


html_theme = "alabaster"
html_title = f"server {release}"
html_static_path = ["_static"] if os.path.isdir(os.path.join(os.path.dirname(__file__),
                                                              "_static")) else []
html_theme_options = {"description": "Flask-SocketIO's API on native threads, in production",
                      "fixed_sidebar": True}
