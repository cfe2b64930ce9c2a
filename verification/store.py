"""Stage outputs on disk: small JSON records next to the zarr artifacts of a job.

When the stages of one job run in separate processes, runs or machines (the partitioned fleet of
``pipelines/``, a distributed executor), each stage reads what the previous ones wrote here rather
than receiving Python objects. Records are plain JSON (roots in hex) and are written atomically
(temp file + rename), so a reader never sees half a record.

``jobs/<job_id>/spec.json``           the registered job spec
``runs/<job_id>/dataset/dataset.json`` the dataset commitment (written by sharding, next to the
                                      shards: under ``ArtifactPaths.store`` when one is set)
``runs/<job_id>/solvers/<id>/run.json``        a solver's TrainingRun
``runs/<job_id>/solvers/<id>/commitment.json`` its signed commitment
``runs/<job_id>/solvers/<id>/published.jsonl`` every commitment it published (the bulletin,
                                                where verifiers look for equivocation)
``runs/<job_id>/coin/<verifier>/commitment.json``  each verifier's spot-check coin commitment
                                                   (public, write-once)
``runs/<job_id>/coin/<verifier>/secret``           its secret (owner-only, write-once; revealed at
                                                   verification)
``runs/<job_id>/attestations.json``   the committee's aggregate attestations (``message_to_json``)
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from datasets.sharding import DatasetCommitment, ShardInfo
from datasets.storage import join, read_bytes
from proofs.hashing import get_hashing
from proofs.messages import (
    AggregateAttestation,
    Signed,
    decode_message,
    encode_message,
    message_from_json,
    message_to_json,
)
from proofs.types import JobId, PartyId, SolverId, Step, decode_root
from verification.paths import ArtifactPaths, check_name
from verification.records import write_json, write_once
from verification.solver import TrainingRun
from verification.spec import JobSpec, compute_job_id, spec_from_dict, spec_to_dict
from verification.verifier import CoinCommitment


class StoreError(FileNotFoundError):
    """A stage record is missing or unreadable (the stage that writes it has not run)."""


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(read_bytes(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"stage record {str(path)!r} is missing or unreadable: {exc}") from exc


def parse_record(path: str | Path, parse):
    """``parse(read_json(path))``; a record of the wrong shape is a ``StoreError`` naming the file."""
    data = read_json(path)
    try:
        return parse(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # incl. MalformedMessageError
        raise StoreError(f"stage record {str(path)!r} is malformed: {type(exc).__name__}: {exc}") from exc


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
    found = compute_job_id(spec)
    # Rule: a stored spec is the job it is filed under.
    if found != job_id:
        raise StoreError(f"spec stored for {job_id} hashes to {found}: the record was altered")
    return spec


# -- dataset -----------------------------------------------------------------------------------
def parse_dataset_commitment(data: dict) -> DatasetCommitment:
    shards = tuple(ShardInfo(int(s["index"]), str(s["path"]), int(s["num_samples"]), decode_root(s["root"]))
                   for s in data["shards"])
    return DatasetCommitment(str(data["name"]), decode_root(data["root"]), shards,
                             int(data["num_samples"]), get_hashing(data["hash_name"]), dict(data["meta"]))


def load_dataset_commitment(paths: ArtifactPaths, job_id: JobId) -> DatasetCommitment:
    return parse_record(join(paths.dataset(job_id), "dataset.json"), parse_dataset_commitment)




# -- training runs and commitments --------------------------------------------------------------
def run_path(paths: ArtifactPaths, job_id: JobId, solver_id: SolverId) -> Path:
    return paths.solver(job_id, solver_id) / "run.json"


def save_run(paths: ArtifactPaths, run: TrainingRun) -> Path:
    data = dataclasses.asdict(run)
    data["roots"] = [r.hex() for r in run.roots]
    return write_json(run_path(paths, run.job_id, run.solver_id), data)


def parse_run(data: dict) -> TrainingRun:
    data = dict(data)
    data["roots"] = tuple(decode_root(r) for r in data["roots"])
    data["losses"] = tuple(float(x) for x in data["losses"])
    data["notices"] = tuple(str(x) for x in data.get("notices", ()))
    if data.get("injected_divergence_step") is not None:
        data["injected_divergence_step"] = Step(int(data["injected_divergence_step"]))
    return TrainingRun(**data)


def load_run(paths: ArtifactPaths, job_id: JobId, solver_id: SolverId) -> TrainingRun:
    return parse_record(run_path(paths, job_id, solver_id), parse_run)


def commitment_path(paths: ArtifactPaths, job_id: JobId, solver_id: SolverId) -> Path:
    return paths.solver(job_id, solver_id) / "commitment.json"


def save_commitment(paths: ArtifactPaths, signed: Signed) -> Path:
    message = signed.message
    return write_json(commitment_path(paths, message.job_id, message.solver_id), commitment_record(signed))


def parse_commitment(data: dict) -> Signed:
    return Signed(decode_message(bytes.fromhex(data["message"])), PartyId(str(data["signer"])),
                  bytes.fromhex(data["public_key"]), bytes.fromhex(data["signature"]))


def load_commitment(paths: ArtifactPaths, job_id: JobId, solver_id: SolverId) -> Signed:
    return parse_record(commitment_path(paths, job_id, solver_id), parse_commitment)


# -- the bulletin: every signed commitment a solver published for a job ---------------------------
def published_path(paths: ArtifactPaths, job_id: JobId, solver_id: SolverId) -> Path:
    return paths.job(job_id) / "solvers" / solver_id / "published.jsonl"


def commitment_record(signed: Signed) -> dict:
    return {"message": encode_message(signed.message).hex(), "signer": signed.signer,
            "public_key": signed.public_key.hex(), "signature": signed.signature.hex()}


def publish_commitments(paths: ArtifactPaths, job_id: JobId, solver_id: SolverId, published: list[Signed]) -> Path:
    """Replace what ``solver_id`` published for the job (atomically: a re-run publishes the same;
    one file per solver, so solvers committing in parallel runs never race)."""
    path = published_path(paths, job_id, solver_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.writelines(json.dumps(commitment_record(s)) + "\n" for s in published)
    os.replace(tmp, path)
    return path


def read_bulletin(paths: ArtifactPaths, job_id: JobId) -> list[Signed]:
    """Every commitment any solver published for the job (none if nothing was published)."""
    signed = []
    for path in sorted((paths.job(job_id) / "solvers").glob("*/published.jsonl")):
        lines = path.read_text().splitlines()
        signed += [parse_record_line(path, n, line) for n, line in enumerate(lines, 1) if line.strip()]
    return signed


def parse_record_line(path: Path, number: int, line: str) -> Signed:
    try:
        return parse_commitment(json.loads(line))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreError(f"bulletin {str(path)!r} line {number} is malformed: {exc}") from exc


# -- each verifier's spot-check coin (``verification.verifier``) ---------------------------------
def coin_path(paths: ArtifactPaths, job_id: JobId, verifier: PartyId) -> Path:
    return paths.job(job_id) / "coin" / check_name("verifier", verifier) / "commitment.json"


def coin_secret_path(paths: ArtifactPaths, job_id: JobId, verifier: PartyId) -> Path:
    return paths.job(job_id) / "coin" / check_name("verifier", verifier) / "secret"


def save_coin_secret(paths: ArtifactPaths, job_id: JobId, verifier: PartyId, secret: bytes) -> bytes:
    """Keep ``verifier``'s coin secret (readable by its owner only); the first secret stored for a
    job stays, and is returned."""
    return write_once(coin_secret_path(paths, job_id, verifier), secret, mode=0o600)


def load_coin_secret(paths: ArtifactPaths, job_id: JobId, verifier: PartyId) -> bytes:
    try:
        return coin_secret_path(paths, job_id, verifier).read_bytes()
    except OSError as exc:
        raise StoreError(f"the coin secret of verifier {verifier!r} for job {job_id} is missing: {exc}") from exc


def save_coin_commitment(paths: ArtifactPaths, published: CoinCommitment) -> CoinCommitment:
    """Publish a verifier's coin commitment; the first one it published for a job stays, and is returned."""
    record = {"job_id": published.job_id, "verifier": published.verifier, "commitment": published.commitment.hex()}
    write_once(coin_path(paths, published.job_id, published.verifier), json.dumps(record, indent=1).encode())
    return load_coin_commitment(paths, published.job_id, published.verifier)


def parse_coin_commitment(data: dict) -> CoinCommitment:
    return CoinCommitment(JobId(str(data["job_id"])), PartyId(str(data["verifier"])), decode_root(data["commitment"]))


def load_coin_commitment(paths: ArtifactPaths, job_id: JobId, verifier: PartyId) -> CoinCommitment:
    """The coin commitment ``verifier`` published for the job (``StoreError`` when the job was
    never opened)."""
    return parse_record(coin_path(paths, job_id, verifier), parse_coin_commitment)


# -- the committee's aggregate attestations (``verification.protocol.process_attest``) ----------
def attestations_path(paths: ArtifactPaths, job_id: JobId) -> Path:
    return paths.job(job_id) / "attestations.json"


def save_attestations(paths: ArtifactPaths, job_id: JobId, aggregates: tuple[AggregateAttestation, ...]) -> Path:
    """The job's aggregate attestations, each in its JSON form (``message_to_json``), in order."""
    return write_json(attestations_path(paths, job_id), [message_to_json(a) for a in aggregates])


def parse_attestations(data: Any) -> tuple[AggregateAttestation, ...]:
    if not isinstance(data, list):
        raise ValueError(f"a list of aggregate attestations, got {type(data).__name__}")
    return tuple(message_from_json(AggregateAttestation, item) for item in data)


def load_attestations(paths: ArtifactPaths, job_id: JobId) -> tuple[AggregateAttestation, ...]:
    """The job's aggregate attestations (``StoreError`` naming the file when missing or malformed)."""
    return parse_record(attestations_path(paths, job_id), parse_attestations)
