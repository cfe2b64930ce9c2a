"""The catalog of failure modes: what Pinpoint detects, where, and how it reports it.

Pinpoint moves other people's money on other people's claims, so every bad input fails loudly and
precisely — a typed error whose message names the artifact (file, store, shard, checkpoint, solver,
field) and the offending value — and nothing reaches the ledger. Faults *inside the protocol* (a
party that sends a bad proof, stops answering or runs out of time) are not errors of the pipeline:
the game's rules turn them into a forfeit, and settlement then slashes the party at fault.

Terms
-----
raises
    the stage stops with the exception; later stages (settlement included) never run.
forfeit
    ``verification.dispute.Forfeit`` inside the game: recorded as the game's last transcript move
    and as ``DisputeResult.reason`` (``"forfeit: <party> forfeits: <reason>"``); the other party
    wins the dispute (Arbitrum BoLD's and Truebit's timeout/forfeit rule).
warns
    a ``warnings.warn`` of the named category; the run continues safely.

``FAILURES`` lists bad inputs, ``CRASHES`` what happens when a process dies. The README's
"Failure modes" section is ``render_markdown()``; ``tests/reliability/test_catalog.py`` feeds
every entry of ``FAILURES`` through the pipeline and checks its error, its message and the
untouched ledger. This module is data only.
"""

from __future__ import annotations

from dataclasses import dataclass

NOTHING = "nothing (no artifact, no ledger row)"
SOLVERS_DATA = ("nothing by the read; a solver's store is its own to keep: a spot check counts a "
                "checkpoint it cannot read as a mismatch, and in the dispute the solver cannot answer and forfeits")
FORFEIT_WRITTEN = ("a forfeit move in the transcript; the party at fault loses the dispute and "
                   "settlement slashes it (a solver) or keeps its bond (a challenger)")


@dataclass(frozen=True)
class FailureMode:
    """One bad input: ``error`` is the dotted name of the exception (or warning) class."""

    name: str
    failure: str
    detected_in: str
    error: str
    reported_as: str  # "raises" | "forfeit" | "warns"
    names: str
    written: str


@dataclass(frozen=True)
class CrashRecovery:
    """What a process killed at some point leaves behind, and how a re-run recovers."""

    crash: str
    handled_in: str
    left_behind: str
    rerun: str


FAILURES: tuple[FailureMode, ...] = (
    # -- the job spec ----------------------------------------------------------------------
    FailureMode(
        "spec-unreadable", "job spec file missing or not YAML/JSON",
        "verification.spec.load_spec", "verification.spec.SpecError", "raises",
        "the spec file and the parser's error", NOTHING),
    FailureMode(
        "spec-inconsistent", "inconsistent program rule, e.g. checkpoint interval k > steps T",
        "verification.spec.validate_spec", "verification.spec.SpecError", "raises",
        "the spec file, the field, its value and the rule (k=…, T=…)", NOTHING),
    FailureMode(
        "spec-negative-amount", "negative or non-integer token amount (stake, bond, fee, payment)",
        "verification.spec.spec_from_dict", "verification.spec.SpecError", "raises",
        "the spec file, economics.<field> and its value", NOTHING),
    FailureMode(
        "spec-unknown-field", "unknown (misspelt) field in the spec or its economics",
        "verification.spec.spec_from_dict", "verification.spec.SpecError", "raises",
        "the spec file, the unknown fields and the known ones", NOTHING),
    FailureMode(
        "unknown-strategy", "a solver names an unknown strategy, or a plug-in that cannot be "
        "imported or built", "verification.lifecycle.validate_job",
        "verification.strategies.StrategyError", "raises",
        "the strategy name and the catalog (or the import error / bad parameters)",
        NOTHING + ": run_job stops before sharding"),
    # -- data and checkpoints --------------------------------------------------------------
    FailureMode(
        "dataset-chunk-corrupted", "a stored dataset chunk was altered (every stage that loads "
        "the program reads the data)", "datasets.sharding.read_shard",
        "datasets.sharding.DatasetIntegrityError", "raises",
        "the shard index, its path, the computed and the committed shard roots (or zarr's error)",
        NOTHING),
    FailureMode(
        "dataset-chunk-missing", "a dataset chunk file (or a whole shard) is missing",
        "datasets.sharding.read_shard", "datasets.sharding.DatasetIntegrityError", "raises",
        "the shard index, its path, the computed and the committed shard roots", NOTHING),
    FailureMode(
        "checkpoint-chunk-corrupted", "a stored checkpoint chunk was altered (read by interval "
        "spot checks, dispute providers and resume)",
        "verification.execution.checkpoints.read_checkpoint",
        "verification.execution.checkpoints.CheckpointError", "raises",
        "the store, the checkpoint index, the computed and the recorded state roots (or zarr's "
        "error)", SOLVERS_DATA),
    FailureMode(
        "checkpoint-chunk-missing", "a checkpoint chunk file is missing (zarr would read zeros)",
        "verification.execution.checkpoints.read_checkpoint",
        "verification.execution.checkpoints.CheckpointError", "raises",
        "the store, the checkpoint index, the computed and the recorded state roots",
        SOLVERS_DATA),
    FailureMode(
        "trace-truncated", "a checkpoint store holds fewer checkpoints than its trace commits to",
        "verification.execution.checkpoints.read_checkpoint",
        "verification.execution.checkpoints.CheckpointError", "raises",
        "the store, how many checkpoints it holds of how many, and the one asked for",
        SOLVERS_DATA),
    FailureMode(
        "partial-store-untrusted", "an interrupted run's partial store has no intact first checkpoint, "
        "is not a checkpoint store, or was written by another run (job, solver, strategy, spec, k); "
        "a later damaged checkpoint only ends its progress at the one before",
        "verification.solver.load_resume_point",
        "verification.solver.DiscardedCheckpointWarning", "warns",
        "the partial store and the problem (checkpoint and roots, or the mismatching run)",
        "the partial store is deleted; training restarts at step 0"),
    # -- commitments, signatures, proofs ---------------------------------------------------
    FailureMode(
        "root-wrong-length", "a state or trace root that is not 32 bytes in a commitment being "
        "signed", "proofs.messages.encode_message",
        "proofs.messages.MalformedMessageError", "raises", "the field and its value", NOTHING),
    FailureMode(
        "message-malformed", "message bytes that are not a canonical encoding (truncated, "
        "trailing bytes, unknown tag)", "proofs.messages.decode_message",
        "proofs.messages.MalformedMessageError", "raises",
        "the field or tag and the bytes", NOTHING),
    FailureMode(
        "proof-malformed", "a serialized Merkle proof with a hash of the wrong length, non-hex "
        "data, or an index outside 0..size-1", "proofs.merkle.MerkleProof.from_dict",
        "proofs.merkle.MalformedProofError", "raises", "the offending value", NOTHING),
    FailureMode(
        "public-key-malformed", "a commitment carries bytes that are not a BLS public key",
        "verification.lifecycle.require_valid_commitments", "proofs.bls.MalformedKeyError",
        "raises", "the key bytes and why they are invalid", NOTHING),
    FailureMode(
        "signature-malformed", "a commitment carries bytes that are not a BLS signature",
        "verification.lifecycle.require_valid_commitments",
        "proofs.bls.MalformedSignatureError", "raises",
        "the signature bytes and why they are invalid", NOTHING),
    FailureMode(
        "key-not-registered", "a commitment signed with a valid key that is not the solver's",
        "verification.lifecycle.require_valid_commitments",
        "verification.lifecycle.LifecycleError", "raises",
        "the solver, the key used and the registered key", NOTHING),
    FailureMode(
        "signature-invalid", "a well-formed signature that does not verify (tampered commitment)",
        "verification.lifecycle.require_valid_commitments",
        "verification.lifecycle.LifecycleError", "raises", "the solver and the job", NOTHING),
    FailureMode(
        "commitment-replayed", "a validly signed commitment of another job, solver, T or k",
        "verification.lifecycle.require_valid_commitments",
        "verification.lifecycle.LifecycleError", "raises",
        "the solver, the field, the committed and the expected values", NOTHING),
    # -- the dispute game ------------------------------------------------------------------
    FailureMode(
        "proof-tampered", "a party reveals a checkpoint root whose Merkle proof does not "
        "verify against its signed trace root", "verification.dispute.DisputeGame",
        "verification.dispute.Forfeit", "forfeit", "the party and the checkpoint index",
        FORFEIT_WRITTEN),
    FailureMode(
        "party-silent", "a party cannot answer (its provider raises ProviderError)",
        "verification.dispute.ChessClock", "verification.dispute.Forfeit", "forfeit",
        "the party and its provider's error",
        FORFEIT_WRITTEN),
    FailureMode(
        "party-timeout", "a party's answers exceed its chess-clock time budget",
        "verification.dispute.ChessClock", "verification.dispute.Forfeit", "forfeit",
        "the party, the call that used up its budget and the budget",
        FORFEIT_WRITTEN),
    FailureMode(
        "party-hung", "a party that stops answering (timeout): its provider call never returns",
        "verification.dispute.ChessClock", "verification.dispute.Forfeit", "forfeit",
        "the party, the call it left unanswered and its time budget",
        FORFEIT_WRITTEN + "; the game stops waiting when the party's budget runs out"),
    # -- a saved dispute transcript --------------------------------------------------------
    FailureMode(
        "transcript-move-replayed", "a replayed game move in a saved transcript: a copy of an "
        "earlier move, or a move that follows an earlier one than its predecessor",
        "verification.dispute.load_transcript", "verification.dispute.TranscriptError", "raises",
        "the transcript file, the move's position and the move it replays", NOTHING),
    FailureMode(
        "transcript-move-reordered", "a reordered (or dropped) game move in a saved transcript",
        "verification.dispute.load_transcript", "verification.dispute.TranscriptError", "raises",
        "the transcript file, the first move out of order, its previous id and the expected one",
        NOTHING),
    FailureMode(
        "transcript-move-altered", "a game move whose content was altered in a saved transcript",
        "verification.dispute.load_transcript", "verification.dispute.TranscriptError", "raises",
        "the transcript file, the move, the id its content hashes to and the id it carries",
        NOTHING),
    FailureMode(
        "transcript-head-mismatch", "a transcript whose chain does not end at the head the "
        "report anchors: moves truncated or appended, or the whole chain rebuilt",
        "verification.dispute.load_transcript", "verification.dispute.TranscriptError", "raises",
        "the transcript file, its head and the anchored head (the report's transcript_head)",
        NOTHING),
    # -- the spot-check coin -------------------------------------------------------------
    FailureMode(
        "coin-secret-replaced", "the verifier's stored coin secret no longer opens the coin "
        "commitment it published when the job opened (a redrawn coin)",
        "verification.lifecycle.reveal_spot_check_coin", "verification.lifecycle.LifecycleError", "raises",
        "the job, the published commitment and the secret's file", NOTHING),
    FailureMode(
        "check-not-selected", "settlement is handed a check of a solver that the revealed coin did "
        "not select", "verification.verifier.compute_selection_faults",
        "verification.lifecycle.LifecycleError", "raises", "the job and the solver", NOTHING),
    # -- settlement and the report ---------------------------------------------------------
    FailureMode(
        "insufficient-funds", "a party cannot cover its stake, payment or bond",
        "verification.settlement.settle.settle_job",
        "verification.settlement.ledger.InsufficientFunds", "raises",
        "the transaction, the account, its balance and the amount due",
        "nothing: the whole settlement (funding included) is rolled back"),
    FailureMode(
        "ledger-schema", "the ledger file holds a ledger of another schema version",
        "verification.settlement.ledger.Ledger", "verification.settlement.ledger.LedgerSchemaError",
        "raises", "the ledger file and its version",
        "no row: the file keeps its version and tables (SQLite switches it to WAL journaling)"),
    FailureMode(
        "report-unreadable", "report.json truncated or not JSON",
        "verification.report.read_report", "verification.report.ReportError", "raises",
        "the report file and the parser's error", NOTHING),
)

CRASHES: tuple[CrashRecovery, ...] = (
    CrashRecovery(
        "training killed at any step (SIGKILL)", "verification.solver.train",
        "`<checkpoints>.partial` with checkpoints 0…i and their roots and losses (storage overlaps "
        "training, so the checkpoint still being written at the kill may be missing: i is the last stored)",
        "resumes from checkpoint i after checking every stored checkpoint against its root; "
        "the trace root is bit-identical to an uninterrupted run"),
    CrashRecovery(
        "killed while a checkpoint is written",
        "verification.execution.checkpoints.CheckpointWriter.write",
        "that checkpoint's row missing or torn (progress is the leading rows that hash to the roots "
        "they record, so a torn row counts for nothing)",
        "resumes from the checkpoint before and overwrites it"),
    CrashRecovery(
        "killed after the last checkpoint, before the rename",
        "verification.execution.checkpoints.CheckpointWriter.finish",
        "a complete partial store", "resumes with nothing left to train and renames it"),
    CrashRecovery(
        "killed during settlement", "verification.settlement.ledger.Ledger.atomic",
        "the ledger untouched: all of a job's transactions are one SQLite transaction",
        "settles the job fully, once"),
    CrashRecovery(
        "killed after settlement committed", "verification.settlement.settle.settle_job",
        "the settlement fully applied", "a no-op (`already_settled`): nothing is paid twice"),
    CrashRecovery(
        "killed while writing shards, the report or a transcript",
        "datasets.sharding.write_shards, verification.report.write_report, "
        "verification.dispute.save_transcript",
        "a temporary file or directory, never a half-written artifact under its final name",
        "rewrites the same content (every stage is deterministic)"),
)


def render_markdown() -> str:
    """The README's "Failure modes" tables."""
    lines = ["| failure | detected in | error | message names | written |",
             "|---|---|---|---|---|"]
    for f in FAILURES:
        how = {"raises": "raises", "forfeit": "forfeit via", "warns": "warns"}[f.reported_as]
        lines.append(f"| {f.failure} | {code(f.detected_in)} | {how} `{f.error.rsplit('.', 1)[1]}` "
                     f"| {f.names} | {f.written} |")
    lines += ["", "| crash | handled in | left behind | re-run |", "|---|---|---|---|"]
    lines += [f"| {c.crash} | {code(c.handled_in)} | {c.left_behind} | {c.rerun} |" for c in CRASHES]
    return "\n".join(lines)


def code(names: str) -> str:
    """``a, b`` as markdown code spans."""
    return ", ".join(f"`{name}`" for name in names.split(", "))
