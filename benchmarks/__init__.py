"""Overhead study: pytest-benchmark suites and the report that turns their JSON into ratios.

Every suite is a ``benchmarks/test_bench_*.py`` file whose benchmarks name a *group* (what they
measure: ``train-step``, ``commit``, ``sign``, ``merkle``, ``spot-check``, ``dispute``, ``referee``,
``repro-ops``, ``schemes`` …) and describe their setting in ``extra_info`` (``model``, ``width``,
``T``, ``k``, ``backend``, ``mode``, ``threads`` …). ``benchmarks.report`` reads the JSON of one
run and states every verification cost as a ratio to the training cost measured in that run.

Sizes. ``make test`` runs each benchmark once (``--benchmark-disable``) so that the suites cannot
rot, with ``PINPOINT_BENCH_SMOKE=1``: the smallest sizes only (``get_smoke``). ``make bench`` uses
the small sizes below (about 6 minutes on 2 cores); ``make bench QUICK=1`` (``pytest benchmarks
--quick``) times the smallest sizes, with 3 rounds per paired ratio, in about a minute, for CI;
``PINPOINT_BENCH_FULL=1`` adds the larger sizes of a real study.
"""

from __future__ import annotations

import os

FULL_ENV_VAR = "PINPOINT_BENCH_FULL"
SMOKE_ENV_VAR = "PINPOINT_BENCH_SMOKE"
QUICK_ENV_VAR = "PINPOINT_BENCH_QUICK"  # set by ``pytest benchmarks --quick`` (with the smoke sizes)


def is_full_study() -> bool:
    """Whether ``PINPOINT_BENCH_FULL=1`` asks for the larger sizes of a real study."""
    return os.environ.get(FULL_ENV_VAR, "") == "1"


def get_sizes(small: tuple, full: tuple) -> tuple:
    """``small`` by default; ``small + full`` (in order, without repeats) for a full study."""
    if not is_full_study():
        return small
    return tuple(dict.fromkeys(small + full))


def is_smoke_run() -> bool:
    """Whether ``PINPOINT_BENCH_SMOKE=1`` (``make test``) asks only that every benchmark runs."""
    return os.environ.get(SMOKE_ENV_VAR, "") == "1"


def get_smoke(value, smoke):
    """``smoke`` in a smoke run (``make test``), ``value`` otherwise."""
    return smoke if is_smoke_run() else value


def get_paired_rounds(default: int) -> int:
    """Rounds of a paired measurement: ``default``; 3 in the quick profile (a spread, quickly);
    1 in a smoke run, which only checks that the code runs."""
    if os.environ.get(QUICK_ENV_VAR, "") == "1":
        return 3
    return get_smoke(default, 1)
