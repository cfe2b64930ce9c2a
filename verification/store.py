"""Stage outputs on disk: small JSON records next to the zarr artifacts of a job.

When the stages of one job run in separate processes, runs or machines (the partitioned fleet of
``pipelines/``, a distributed executor), each stage reads what the previous ones wrote here rather
than receiving Python objects. Records are plain JSON (roots in hex) and are written atomically
(temp file + rename), so a reader never sees half a record.

``jobs/<job_id>/spec.json``           the registered job spec
``runs/<job_id>/dataset/dataset.json`` the dataset commitment (written by sharding)
``runs/<job_id>/solvers/<id>/run.json``        a solver's TrainingRun
``runs/<job_id>/solvers/<id>/commitment.json`` its signed commitment
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from datasets.sharding import DatasetCommitment, ShardInfo
from proofs.messages import Signed, decode_message, encode_message
from proofs.types import JobId, PartyId, Root, SolverId, Step
from verification.paths import ArtifactPaths
from verification.solver import TrainingRun
from verification.spec import JobSpec, compute_job_id, spec_from_dict, spec_to_dict


class StoreError(FileNotFoundError):
    """A stage record is missing or unreadable (the stage that writes it has not run)."""


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=1)
    os.replace(tmp, path)
    return path


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(f"stage record {str(path)!r} is missing or unreadable: {exc}") from exc


# -- job specs ---------------------------------------------------------------------------------
def spec_path(paths: ArtifactPaths, job_id: JobId) -> Path:
    return paths.root / "jobs" / job_id / "spec.json"


def save_spec(paths: ArtifactPaths, spec: JobSpec) -> JobId:
    job_id = compute_job_id(spec)
    write_json(spec_path(paths, job_id), spec_to_dict(spec))
    return job_id


def load_spec_of(paths: ArtifactPaths, job_id: JobId) -> JobSpec:
    data = read_json(spec_path(paths, job_id))
    spec = spec_from_dict({k: v for k, v in data.items()}, base=JobSpec())
    if compute_job_id(spec) != job_id:
        raise StoreError(f"spec stored for {job_id} hashes to {compute_job_id(spec)}: the record was altered")
    return spec


# -- dataset -----------------------------------------------------------------------------------
def load_dataset_commitment(paths: ArtifactPaths, job_id: JobId) -> DatasetCommitment:
    data = read_json(paths.dataset(job_id) / "dataset.json")
    shards = tuple(ShardInfo(s["index"], s["path"], s["num_samples"], Root(bytes.fromhex(s["root"])))
                   for s in data["shards"])
    return DatasetCommitment(data["name"], Root(bytes.fromhex(data["root"])), shards,
                             data["num_samples"], data["hash_name"], data["meta"])


# -- training runs and commitments --------------------------------------------------------------
def run_path(paths: ArtifactPaths, job_id: JobId, solver_id: SolverId) -> Path:
    return paths.checkpoints(job_id, solver_id).parent / "run.json"


def save_run(paths: ArtifactPaths, run: TrainingRun) -> Path:
    data = dataclasses.asdict(run)
    data["roots"] = [r.hex() for r in run.roots]
    return write_json(run_path(paths, run.job_id, run.solver_id), data)


def load_run(paths: ArtifactPaths, job_id: JobId, solver_id: SolverId) -> TrainingRun:
    data = read_json(run_path(paths, job_id, solver_id))
    data["roots"] = tuple(Root(bytes.fromhex(r)) for r in data["roots"])
    data["losses"] = tuple(data["losses"])
    if data.get("injected_divergence_step") is not None:
        data["injected_divergence_step"] = Step(data["injected_divergence_step"])
    return TrainingRun(**data)


def commitment_path(paths: ArtifactPaths, job_id: JobId, solver_id: SolverId) -> Path:
    return paths.checkpoints(job_id, solver_id).parent / "commitment.json"


def save_commitment(paths: ArtifactPaths, signed: Signed) -> Path:
    message = signed.message
    return write_json(commitment_path(paths, message.job_id, message.solver_id), {
        "message": encode_message(message).hex(), "signer": signed.signer,
        "public_key": signed.public_key.hex(), "signature": signed.signature.hex()})


def load_commitment(paths: ArtifactPaths, job_id: JobId, solver_id: SolverId) -> Signed:
    data = read_json(commitment_path(paths, job_id, solver_id))
    return Signed(decode_message(bytes.fromhex(data["message"])), PartyId(data["signer"]),
                  bytes.fromhex(data["public_key"]), bytes.fromhex(data["signature"]))
