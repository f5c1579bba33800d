"""Generates docs/api.md and docs/settings.md from the code.

``python -m server.docgen`` rewrites both; tests/test_docs.py fails when
they are out of step with the docstrings or the settings table.
"""
from __future__ import annotations

import inspect
import pathlib
import sys

from . import settings

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def _entry(title: str, obj: object) -> list[str]:
    try:
        sig = str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        sig = ""
    doc = inspect.getdoc(obj) or ""
    return [f"### `{title}{sig}`", "", doc, ""]


def api_markdown() -> str:
    import server

    out = ["# API reference", "",
           "Generated from the docstrings by `python -m server.docgen`; do not edit.", ""]
    for name in server.__all__:
        obj = getattr(server, name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            out += [f"## `{name}`", "", inspect.getdoc(obj) or "", ""]
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                if callable(member) and (inspect.getdoc(member) or attr == "__init__"):
                    out += _entry(f"{name}.{attr}", member)
        elif inspect.isclass(obj):
            out += [f"## `{name}` (exception)", "", inspect.getdoc(obj) or "", ""]
        else:
            out += _entry(name, obj)
    return "\n".join(out).rstrip() + "\n"


def settings_markdown() -> str:
    return ("# Settings\n\nGenerated from `server/settings.py` by `python -m server.docgen`; "
            "do not edit.\n\nOptions given in code win over `SERVER_*` environment variables, "
            "which win over the defaults.\n\n" + settings.markdown_table())


def main() -> int:
    (DOCS / "api.md").write_text(api_markdown())
    (DOCS / "settings.md").write_text(settings_markdown())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
