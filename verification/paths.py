"""Where a job's artifacts live. ``artifacts/`` is git-ignored; its location is configurable
(``PINPOINT_ARTIFACTS`` or the Dagster resource)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from proofs.types import JobId, SolverId

DEFAULT_ARTIFACTS = "artifacts"


def default_artifacts_dir() -> Path:
    return Path(os.environ.get("PINPOINT_ARTIFACTS", DEFAULT_ARTIFACTS)).resolve()


@dataclass(frozen=True)
class ArtifactPaths:
    root: Path

    def job(self, job_id: JobId) -> Path:
        return self.root / "runs" / job_id

    def dataset(self, job_id: JobId) -> Path:
        return self.job(job_id) / "dataset"

    def checkpoints(self, job_id: JobId, solver_id: SolverId) -> Path:
        return self.job(job_id) / "solvers" / solver_id / "checkpoints.zarr"

    def replica(self, job_id: JobId) -> Path:
        return self.job(job_id) / "verifier" / "replica.zarr"

    def transcript(self, job_id: JobId, solver_id: SolverId) -> Path:
        return self.job(job_id) / "disputes" / f"{solver_id}.json"

    def report(self, job_id: JobId) -> Path:
        return self.job(job_id) / "report.json"

    def loss_plot(self, job_id: JobId) -> Path:
        return self.job(job_id) / "loss.png"

    def incentives(self, job_id: JobId) -> Path:
        return self.job(job_id) / "incentives"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.sqlite"
