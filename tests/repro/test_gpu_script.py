"""The prepared GPU check (scripts/gpu_check.sh) cannot rot: on a machine without CUDA its figures
script runs end to end on the CPU and writes every section; the CUDA tests it runs skip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_the_shell_script_parses():
    done = subprocess.run(["bash", "-n", str(REPO / "scripts" / "gpu_check.sh")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_the_figures_script_writes_every_section(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PINPOINT_GPU_ROUNDS": "1"}
    done = subprocess.run([sys.executable, "-m", "scripts.gpu_figures", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    models = {"mlp", "mlp-adamw", "cnn", "transformer"}
    assert set(figures["roots"]) == set(figures["ratios"]) == set(figures["overhead"]) == models
    assert all(row["identical"] for row in figures["roots"].values())
    assert all(row["ratios"]["reproducible/native"]["median"] > 0 for row in figures["ratios"].values())
