"""The ``digits`` source reads the table shipped in ``datasets/data/`` (no scikit-learn), gives
the very bytes scikit-learn's ``load_digits`` gave, and is part of an installed package."""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import tomllib
from pathlib import Path

import pytest

import datasets.sources as sources
from datasets.sources import UnknownSourceError, load_source

ROOT = Path(__file__).resolve().parents[2]


def test_digits_arrays_are_the_ones_scikit_learn_gave():
    # Pinned from scikit-learn's load_digits (data / 16 as float32, target as int64) before the
    # dependency was dropped: the same bytes keep every digits dataset root unchanged.
    src = load_source("digits")
    assert hashlib.sha256(src.x.tobytes()).hexdigest() == (
        "9f578524b6cec1fc800cc52dfc87ebe56264983d490aa72a4bd928ba2570ec77")
    assert hashlib.sha256(src.y.tobytes()).hexdigest() == (
        "a3c91c262eddcf7ba8f0e37507c30284493c9b20412ffe4af30d536401f7ba21")
    assert src.x.flags.c_contiguous and src.y.flags.c_contiguous


def test_the_shipped_table_is_scikit_learns_file_byte_for_byte():
    assert hashlib.sha256(sources.DIGITS_FILE.read_bytes()).hexdigest() == (
        "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22")


def test_the_table_is_package_data():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    relative = sources.DIGITS_FILE.relative_to(ROOT / "datasets").as_posix()
    assert any(fnmatch.fnmatch(relative, pattern) for pattern in package_data["datasets"])


@pytest.mark.parametrize("content, problem", [
    (b"1,2,3\n", r"holds a \(1, 3\) table, expected \(1797, 65\)"),
    ((b"0," * 64 + b"3\n") * 1796 + b"0," * 64 + b"12\n", r"labels in 3..12, expected"),
    ((b"0," * 64 + b"3\n") * 1796 + b"17," * 64 + b"1\n", r"pixels in 0..17 and"),
    (b"not,numbers\n", r"cannot be read"),
])
def test_a_damaged_digits_file_is_named(tmp_path, monkeypatch, content, problem):
    bad = tmp_path / "digits.csv.gz"
    bad.write_bytes(gzip.compress(content))
    monkeypatch.setattr(sources, "DIGITS_FILE", bad)
    with pytest.raises(UnknownSourceError, match=rf"digits data .*digits.csv.gz.*{problem}"):
        load_source("digits")


def test_nothing_imports_scikit_learn():
    offenders = [str(p.relative_to(ROOT)) for folder in ("datasets", "proofs", "verification", "pipelines",
                                                           "benchmarks")
                 for p in (ROOT / folder).rglob("*.py") if "sklearn" in p.read_text()]
    assert offenders == []
