"""The README's failure-mode tables are the catalog's, not a copy that can drift."""

from pathlib import Path

from verification.failures import render_markdown


def test_readme_failure_tables_match_the_catalog():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert render_markdown().strip() in readme
