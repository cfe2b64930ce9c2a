"""``pytest benchmarks --group NAME`` runs one group by its name (``-k`` matches test names only)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def collect(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "--collect-only", "-q", "-p", "no:randomly",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_a_group_is_selected_by_its_name_and_an_unknown_one_is_named():
    done = collect("--group", "spot-check", "--group", "referee")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert ids and {i.split("::")[1].split("[")[0] for i in ids} == {
        "test_spot_check_interval", "test_spot_check_replicate", "test_referee", "test_referee_width", "test_paired_referee"}
    wrong = collect("--group", "spot_check")
    assert wrong.returncode != 0
    assert "no such benchmark group" in wrong.stderr + wrong.stdout and "'spot-check'" in wrong.stderr + wrong.stdout


def test_the_quick_profile_collects_the_smallest_sizes():
    """``--quick`` (``make bench QUICK=1``) is the smoke run's sizes, timed: no T = 10,000 dispute."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("PINPOINT_BENCH_SMOKE", "PINPOINT_BENCH_QUICK")}

    def dispute_ids(*args: str) -> set[str]:
        done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_bench_dispute.py", "--collect-only",
                               "-q", "-p", "no:randomly", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=600, env=env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return {line.split("::")[1] for line in done.stdout.splitlines() if "::test_dispute[" in line}

    assert "test_dispute[10000-2]" in dispute_ids()
    quick = dispute_ids("--quick")
    assert quick and "test_dispute[10000-2]" not in quick and "test_dispute[1000-2]" in quick
