"""The generated reference pages are in step with the code."""
from server import docgen


def test_api_reference_is_up_to_date():
    assert (docgen.DOCS / "api.md").read_text() == docgen.api_markdown(), (
        "docs/api.md is stale: run python -m server.docgen")


def test_settings_reference_is_up_to_date():
    assert (docgen.DOCS / "settings.md").read_text() == docgen.settings_markdown(), (
        "docs/settings.md is stale: run python -m server.docgen")
