"""Pinpoint installs as a package (``pip install -e .``, which ``make`` runs) with a ``pinpoint``
command, and every top-level package of the repository is part of it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_top_level_package_is_installed_by_the_project():
    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    top_level = sorted(p.parent.name for p in ROOT.glob("*/__init__.py"))
    assert top_level == ["benchmarks", "datasets", "pipelines", "proofs", "tests", "verification"]
    assert sorted(name.rstrip("*") for name in found["include"]) == [p for p in top_level if p != "tests"]


def installed() -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution("pinpoint")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("pinpoint is not installed in this environment (make runs `pip install -e .`)")


def test_the_pinpoint_command_is_the_cli_and_answers_help():
    (script,) = [e for e in installed().entry_points if e.group == "console_scripts" and e.name == "pinpoint"]
    assert script.value == "verification.__main__:main"
    command = Path(sys.executable).parent / "pinpoint"
    done = subprocess.run([str(command), "show", "--help"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("usage: pinpoint show")
