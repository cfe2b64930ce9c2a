"""The README's examples are executable: they are run here exactly as printed."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from verification.lifecycle import run_job
from verification.paths import ArtifactPaths
from verification.spec import spec_from_dict

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_job() -> dict:
    return yaml.safe_load(re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)[0])


def solvers(report: dict) -> dict:
    return {s["solver_id"]: s for s in report["solvers"]}


def test_readme_custom_job_runs_as_printed(tmp_path):
    report = run_job(spec_from_dict(readme_job()), ArtifactPaths(tmp_path))
    sneaky = solvers(report)["sneaky"]
    assert sneaky["injected_divergence_step"] == 30
    # As the README says: interval 3 (steps 25..32) is not sampled, so the cheater is paid.
    assert 3 not in sneaky["spot_check"]["intervals"] and sneaky["outcome"] == "paid"
    assert solvers(report)["honest"]["outcome"] == "paid"


def test_readme_custom_job_with_replication_slashes_the_cheater(tmp_path):
    report = run_job(spec_from_dict({**readme_job(), "spot_check_policy": "replicate"}), ArtifactPaths(tmp_path))
    sneaky = solvers(report)["sneaky"]
    assert sneaky["outcome"] == "slashed"
    assert sneaky["dispute"]["first_divergent_step"] == 30
    assert report["ledger"]["supply_before"] == report["ledger"]["supply_after"]


def test_readme_plugin_example_is_the_tested_module_and_runs_as_printed(tmp_path):
    printed = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)[0]
    module = (README.parent / "tests" / "game" / "plugin_example.py").read_text()
    assert printed.strip() in module
    job = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)[1])
    mallory = solvers(run_job(spec_from_dict(job), ArtifactPaths(tmp_path)))["mallory"]
    assert mallory["outcome"] == "slashed"
    assert mallory["dispute"]["first_divergent_step"] == 13
    assert mallory["dispute"]["operator"] == "pinpoint.commit_state"
