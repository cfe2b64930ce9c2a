"""The README's examples are executable: they are run here exactly as printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from verification.lifecycle import run_job
from verification.paths import ArtifactPaths
from verification.spec import spec_from_dict
from verification.verifier import CoinReveal, compute_check_intervals

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_job() -> dict:
    return yaml.safe_load(re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)[0])


def solvers(report: dict) -> dict:
    return {s["solver_id"]: s for s in report["solvers"]}


def test_readme_custom_job_runs_as_printed(tmp_path):
    """As the README says: 3 of 6 intervals sampled by the verifier's secret coin; ``sneaky`` is
    slashed at step 30 exactly when its interval 3 (steps 25..32) is among them, and anyone can
    recompute the sample from the revealed secret."""
    spec = spec_from_dict(readme_job())
    report = run_job(spec, ArtifactPaths(tmp_path))
    sneaky = solvers(report)["sneaky"]
    assert sneaky["injected_divergence_step"] == 30
    intervals = tuple(sneaky["spot_check"]["intervals"])
    assert len(intervals) == 3
    if 3 in intervals:
        assert sneaky["outcome"] == "slashed" and sneaky["dispute"]["first_divergent_step"] == 30
    else:
        assert sneaky["outcome"] == "paid" and sneaky["dispute"] is None
    assert solvers(report)["honest"]["outcome"] == "paid"
    coin = CoinReveal(report["job_id"], spec.verifier, bytes.fromhex(report["spot_check_coin"]["secret"]))
    signature = bytes.fromhex(sneaky["signature"])
    assert compute_check_intervals(coin, "sneaky", signature, 6, 3, spec.hashing) == intervals


def test_readme_custom_job_with_replication_slashes_the_cheater(tmp_path):
    report = run_job(spec_from_dict({**readme_job(), "spot_check_policy": "replicate"}), ArtifactPaths(tmp_path))
    sneaky = solvers(report)["sneaky"]
    assert sneaky["outcome"] == "slashed"
    assert sneaky["dispute"]["first_divergent_step"] == 30
    assert report["ledger"]["supply_before"] == report["ledger"]["supply_after"]


def python_block(containing: str) -> str:
    """The README's python block that contains ``containing``."""
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if containing in b]
    return block


def test_readme_plugin_example_is_the_tested_module_and_runs_as_printed(tmp_path):
    printed = python_block("class FlipOnce")
    module = (README.parent / "tests" / "game" / "plugin_example.py").read_text()
    assert printed.strip() in module
    job = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)[1])
    mallory = solvers(run_job(spec_from_dict(job), ArtifactPaths(tmp_path)))["mallory"]
    assert mallory["outcome"] == "slashed"
    assert mallory["dispute"]["first_divergent_step"] == 13
    assert mallory["dispute"]["operator"] == "pinpoint.commit_state"


def test_readme_program_is_the_tested_module():
    module = (README.parent / "tests" / "programs" / "layernorm_mlp.py").read_text()
    assert python_block("class Net").strip() in module


def test_readme_program_script_runs_as_printed(tmp_path):
    """The script, written to a file and run from a fresh directory as a user would."""
    script = tmp_path / "verify_my_program.py"
    script.write_text(python_block("run_job(job"))
    env = {**os.environ, "PYTHONPATH": str(README.parent)}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-2:] == ["honest paid None None", "mallet slashed 13 pinpoint.fixed_mm.default"]
