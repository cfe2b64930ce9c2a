"""Where a job's artifacts live.

Two places:

``root`` (a local directory)
    the job's records: specs, stage records (``run.json``, ``commitment.json``), dispute
    transcripts, reports, plots and the SQLite ledger. ``artifacts/`` by default (git-ignored);
    ``PINPOINT_ARTIFACTS`` or the Dagster resource move it.
``store`` (a location prefix, ``datasets.storage``)
    the zarr stores and the dataset commitment next to them: dataset shards, checkpoint stores and
    the verifier's replica. Empty (the default) puts them under ``root`` as well; an fsspec URL such
    as ``s3://bucket/pinpoint`` (``PINPOINT_STORE`` or the Dagster resource) puts them on that
    filesystem, with the same layout (``<store>/runs/<job_id>/…``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from datasets.storage import Location, join
from proofs.types import JobId, SolverId
from verification.spec import is_safe_identifier

DEFAULT_ARTIFACTS = "artifacts"


class UnsafePathError(ValueError):
    """A name that would become part of an artifact path is not a safe identifier."""


def check_name(kind: str, name: str) -> str:
    """``name`` if it may be a path component (``verification.spec.is_safe_identifier``)."""
    # Rule: paths are built only from safe identifiers, so none climbs out of its job's directory.
    if not is_safe_identifier(name):
        raise UnsafePathError(f"{kind} {name!r} cannot name an artifact path: it must match "
                              f"[A-Za-z0-9][A-Za-z0-9_.-]{{0,63}} and hold no '..'")
    return name


def default_artifacts_dir() -> Path:
    return Path(os.environ.get("PINPOINT_ARTIFACTS", DEFAULT_ARTIFACTS)).resolve()


def default_store() -> str:
    """The zarr store prefix from ``PINPOINT_STORE``; empty means under the artifacts directory."""
    return os.environ.get("PINPOINT_STORE", "")


@dataclass(frozen=True)
class ArtifactPaths:
    root: Path
    store: str = ""  # location prefix of the zarr stores; empty: under ``root``

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))  # a str works as well

    def job(self, job_id: JobId) -> Path:
        return self.root / "runs" / check_name("job id", job_id)

    def solver(self, job_id: JobId, solver_id: SolverId) -> Path:
        """The local directory of a solver's records (its training run and signed commitment)."""
        return self.job(job_id) / "solvers" / check_name("solver id", solver_id)

    def job_store(self, job_id: JobId) -> Location:
        """The location of a job's zarr stores."""
        return join(self.store or self.root, "runs", check_name("job id", job_id))

    def dataset(self, job_id: JobId) -> Location:
        """The location of the dataset shards and their commitment ``dataset.json``."""
        return join(self.job_store(job_id), "dataset")

    def checkpoints(self, job_id: JobId, solver_id: SolverId) -> Location:
        return join(self.job_store(job_id), "solvers", check_name("solver id", solver_id), "checkpoints.zarr")

    def verifier_store(self, job_id: JobId) -> Location:
        """The location of the verifier's replica stores of a job."""
        return join(self.job_store(job_id), "verifier")

    def replica(self, job_id: JobId, token: str) -> Location:
        """A verifier's replica store; ``token`` (e.g. pid and a random suffix) keeps two
        verifications of one job, in two processes, off each other's store."""
        return join(self.verifier_store(job_id), f"replica-{check_name('replica token', token)}.zarr")

    def transcript(self, job_id: JobId, solver_id: SolverId) -> Path:
        return self.job(job_id) / "disputes" / f"{check_name('solver id', solver_id)}.json"

    def report(self, job_id: JobId) -> Path:
        return self.job(job_id) / "report.json"

    def loss_plot(self, job_id: JobId) -> Path:
        return self.job(job_id) / "loss.png"

    def incentives(self, job_id: JobId) -> Path:
        return self.job(job_id) / "incentives"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.sqlite"
