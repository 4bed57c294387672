"""Docs that cannot drift: every setting and every command is documented."""

from pathlib import Path

from clm.config import describe

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented_in_the_configuration_page():
    page = (DOCS / "configuration.md").read_text()
    missing = [var for var, _, _ in describe() if f"`{var}`" not in page]
    assert missing == [], f"document these in docs/configuration.md (clm config --markdown): {missing}"


def test_every_setting_has_a_description():
    assert [var for var, _, text in describe() if not text] == []


def test_the_env_example_lists_every_setting():
    example = (DOCS.parent / ".env.example").read_text()
    assert [var for var, _, _ in describe() if var not in example] == []
