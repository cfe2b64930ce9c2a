"""Data sources: where the samples of a job come from, before sharding.

A *source* is a pair of arrays ``x`` (N, ...) and ``y`` (N, ...) plus the metadata a model needs
(input shape, number of classes or vocabulary size). Every source here is available offline:

``digits``
    The 8x8 handwritten digits (1,797 samples), shipped in this package as
    ``datasets/data/digits.csv.gz``: one row per sample, 64 pixel counts in 0..16 then the label.
    The file is the copy that scikit-learn ships (byte for byte, SHA-256 ``09f66e6d…``), so the
    arrays, and every dataset root built on them, are the ones scikit-learn's ``load_digits`` gives.
    It is the test set of the UCI ML "Optical Recognition of Handwritten Digits" data set
    (E. Alpaydin, C. Kaynak, 1998; https://archive.ics.uci.edu/ml/datasets/Optical+Recognition+of+Handwritten+Digits),
    licensed CC BY 4.0.
    Pixels are scaled to [0, 1] as float32; labels are int64 in 0..9.
``synthetic``
    Gaussian class blobs generated from a seed (any size, for scaling studies).
``text``
    A character-level corpus built from text files on disk (default: the Python standard library's
    own sources, present on any machine with Python). ``x`` holds windows of ``block`` byte tokens
    and ``y`` the same windows shifted by one (next-token targets).

Sources are pure functions of their parameters; the dataset *commitment* (``datasets.sharding``)
is what parties agree on, so a source that differs between machines (``text`` depends on the
Python version) still yields a well-defined job once it has been sharded and committed.
"""

from __future__ import annotations

import importlib
import os
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from proofs.types import describe_unknown


class UnknownSourceError(ValueError):
    """A job spec names a data source that does not exist."""


@dataclass(frozen=True)
class Source:
    """Samples of one data source, in memory."""

    name: str
    x: np.ndarray
    y: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        return int(self.x.shape[0])


DIGITS_FILE = Path(__file__).parent / "data" / "digits.csv.gz"
DIGITS_SHAPE = (1797, 65)  # 64 pixels and the label per row


def load_digits_source() -> Source:
    """The shipped digits: (1797, 64) float32 in [0, 1], labels int64."""
    try:
        table = np.loadtxt(DIGITS_FILE, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise UnknownSourceError(f"digits data {str(DIGITS_FILE)!r} cannot be read: {exc}") from None
    # Rule: the shipped table is 1797 rows of 64 pixels and a label.
    if table.shape != DIGITS_SHAPE:
        raise UnknownSourceError(f"digits data {str(DIGITS_FILE)!r} holds a {table.shape} table, expected {DIGITS_SHAPE}")
    # Rule: pixels are counts in 0..16, labels digits in 0..9.
    pixels, labels = table[:, :-1], table[:, -1]
    if not (0 <= pixels.min() and pixels.max() <= 16 and 0 <= labels.min() and labels.max() <= 9):
        raise UnknownSourceError(f"digits data {str(DIGITS_FILE)!r} has pixels in {pixels.min()}..{pixels.max()} "
                                 f"and labels in {labels.min()}..{labels.max()}, expected 0..16 and 0..9")
    x = (pixels / 16.0).astype(np.float32)
    y = labels.astype(np.int64)
    return Source("digits", x, y, {"input_dim": 64, "num_classes": 10, "image_shape": [1, 8, 8]})


def load_synthetic_source(
    num_samples: int = 2048, input_dim: int = 32, num_classes: int = 4, seed: int = 0
) -> Source:
    """Gaussian blobs: one unit-variance cluster per class around a random centre."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, size=(num_classes, input_dim))
    y = rng.integers(0, num_classes, size=num_samples).astype(np.int64)
    x = (centres[y] + rng.normal(size=(num_samples, input_dim))).astype(np.float32)
    meta = {"input_dim": input_dim, "num_classes": num_classes}
    return Source("synthetic", x, y, meta)


def default_text_root() -> Path:
    """The directory of the running Python's standard library sources."""
    return Path(sysconfig.get_paths()["stdlib"])


def load_text_source(
    root: str | None = None, block: int = 32, max_bytes: int = 262_144, pattern: str = "*.py"
) -> Source:
    """Byte-level next-token windows from the files under ``root`` (sorted, so deterministic)."""
    base = Path(root) if root else default_text_root()
    if not base.is_dir():
        raise UnknownSourceError(f"text source root {str(base)!r} is not a directory")
    data = bytearray()
    for path in sorted(base.glob(pattern)):
        if len(data) >= max_bytes:
            break
        if path.is_file():
            data += path.read_bytes()[: max_bytes - len(data)]
    if len(data) < block + 1:
        raise UnknownSourceError(f"text source {str(base)!r} holds {len(data)} bytes, need > {block}")
    tokens = np.frombuffer(bytes(data), dtype=np.uint8).astype(np.int64)
    count = (len(tokens) - 1) // block
    x = tokens[: count * block].reshape(count, block)
    y = tokens[1 : count * block + 1].reshape(count, block)
    meta = {"vocab_size": 256, "block": block, "root": os.fspath(base)}
    return Source("text", x, y, meta)


SOURCES: dict[str, Callable[..., Source]] = {
    "digits": load_digits_source,
    "synthetic": load_synthetic_source,
    "text": load_text_source,
}


def load_source(name: str, **params: Any) -> Source:
    """Load the named source with its parameters: a catalog name, or a plug-in
    ``"package.module:attr"``, a callable ``(dataset_params: dict) -> (x, y, meta)`` of numpy
    arrays with one sample per row and a dict of sizes (``input_dim``, ``num_classes``, …) that the
    model builder reads."""
    if ":" in name:
        return load_plugin_source(name, params)
    if name not in SOURCES:
        raise UnknownSourceError(describe_unknown("data source", name, SOURCES) + ", or a plug-in 'package.module:attr'")
    return SOURCES[name](**params)


def load_plugin_source(name: str, params: dict[str, Any]) -> Source:
    module_name, _, attr = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # noqa: BLE001 -- whatever the plug-in's import raises, named
        raise UnknownSourceError(f"dataset {name!r} cannot be imported: {type(exc).__name__}: {exc}") from None
    try:
        result = factory(dict(params))
    except Exception as exc:  # noqa: BLE001 -- the plug-in's own failure, named with it
        raise UnknownSourceError(f"dataset {name!r} with dataset_params {params} raised {type(exc).__name__}: {exc}") from None
    if not (isinstance(result, tuple) and len(result) == 3):
        raise UnknownSourceError(f"dataset {name!r} must return (x, y, meta), got {type(result).__name__}")
    x, y, meta = result
    if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and isinstance(meta, dict)):
        raise UnknownSourceError(f"dataset {name!r} must return numpy arrays x, y and a dict meta, got "
                                 f"{type(x).__name__}, {type(y).__name__}, {type(meta).__name__}")
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise UnknownSourceError(f"dataset {name!r}: x {x.shape} and y {y.shape} must hold the same number (>0) of rows")
    if x.dtype.kind not in "fiu" or y.dtype.kind not in "fiu":
        raise UnknownSourceError(f"dataset {name!r}: x and y must be numeric, got {x.dtype} and {y.dtype}")
    return Source(name, np.ascontiguousarray(x), np.ascontiguousarray(y), dict(meta))
