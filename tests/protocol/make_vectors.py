"""Write the protocol's test vectors: ``python -m tests.protocol.make_vectors``.

One JSON file per case, ``tests/protocol/vectors/<transition>/<case>.json``, in consensus-specs'
shape: the job, the pre-state, the message, and either the post-state or the name of the error
the transition raises (then the state is unchanged). The states are built by the transitions
themselves from one small job (two solvers, ``p = 0.5``, a coin whose secret selects ``honest``
and not ``bitflip``); the messages are signed with the job's demo keys, so every signature in a
vector is real. ``tests/protocol/test_vectors.py`` replays them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proofs.messages import Commitment, Signed, sign_message
from proofs.types import JobId, PartyId, Root, SolverId, Step
from tests.protocol.codec import encode_job, encode_message, encode_state
from verification.dispute import DisputeResult
from verification.job import REFEREE, Job, resolve_job
from verification.protocol import (
    Challenge,
    CheckReport,
    DisputeOutcome,
    JobState,
    Kind,
    ProtocolError,
    SettleRequest,
    compute_genesis_state,
    compute_ruling,
    process_message,
)
from verification.solver import party_keypair
from verification.spec import SolverSpec, get_preset
from verification.verifier import (
    CoinCommitment,
    CoinReveal,
    SpotCheck,
    compute_coin_commitment,
    forfeited,
    is_selected_for_check,
    not_checked,
)

VECTORS = Path(__file__).resolve().parent / "vectors"
SPEC = dataclasses.replace(get_preset("minimal"), name="vectors", spot_check_probability=0.5,
                           spot_check_policy="interval",
                           solvers=(SolverSpec(SolverId("honest"), "honest"),
                                    SolverSpec(SolverId("bitflip"), "bitflip", {"step": 6})))
JOB = resolve_job(SPEC)
OTHER_JOB = JobId("job-000000000000")
HONEST, BITFLIP, VERIFIER = SolverId("honest"), SolverId("bitflip"), PartyId(SPEC.verifier)


@dataclass(frozen=True)
class Vector:
    transition: Kind
    case: str
    description: str
    pre: JobState
    message: Any
    error: str | None = None  # the ProtocolError raised; None: the transition accepts the message


# -- the job's messages ------------------------------------------------------------------------
def compute_root(label: str) -> Root:
    return Root(hashlib.sha256(label.encode()).digest())


def build_commitment(solver_id: str, **changes: Any) -> Commitment:
    return dataclasses.replace(Commitment(JOB.job_id, SolverId(solver_id), compute_root(f"{solver_id}/trace"),
                                          compute_root(f"{solver_id}/final"), Step(SPEC.steps),
                                          Step(SPEC.checkpoint_interval), "vectors"), **changes)


def sign(commitment: Commitment, key_of: str | None = None) -> Signed:
    """``commitment`` signed as its solver, with the key of ``key_of`` (default: its own)."""
    sk, _ = party_keypair(SPEC, key_of or commitment.solver_id)
    return sign_message(commitment, sk, PartyId(commitment.solver_id))


SIGNED = {sid: sign(build_commitment(sid)) for sid in (HONEST, BITFLIP)}


def find_secret() -> bytes:
    """The first secret ``sha256(i)`` whose coin selects ``honest`` and not ``bitflip``."""
    for i in range(10_000):
        secret = hashlib.sha256(i.to_bytes(4, "big")).digest()
        reveal = CoinReveal(JOB.job_id, VERIFIER, secret)
        picks = [is_selected_for_check(reveal, sid, SIGNED[sid].signature, SPEC.spot_check_probability,
                                       SPEC.hash_name) for sid in (HONEST, BITFLIP)]
        if picks == [True, False]:
            return secret
    raise RuntimeError("no secret selects honest and not bitflip")


SECRET = find_secret()
COIN = CoinCommitment(JOB.job_id, VERIFIER, compute_coin_commitment(JOB.job_id, VERIFIER, SECRET, SPEC.hash_name))
REVEAL = CoinReveal(JOB.job_id, VERIFIER, SECRET)
CHECK_OK = SpotCheck(HONEST, True, "interval", (0, 1), False, None, 2 * SPEC.checkpoint_interval, 0.0)
CHECK_MISMATCH = dataclasses.replace(CHECK_OK, mismatch=True, disputed_interval=1)
SKIPPED = not_checked(BITFLIP, "interval")
CHALLENGE = Challenge(JOB.job_id, VERIFIER, HONEST, 1)
RESULT = DisputeResult(rounds=6, first_divergent_step=Step(6), operator="aten.add_.Tensor", referee_ops=1,
                       winner="challenger", reason="the referee recomputed operator 3", levels={
                           "checkpoints": 2, "steps": 2, "operators": 2}, transcript=None, seconds=0.0,
                       operator_index=3, transcript_head=compute_root("transcript").hex(),
                       outputs={"solver": compute_root("solver/out").hex(),
                                "challenger": compute_root("challenger/out").hex(),
                                "referee": compute_root("challenger/out").hex()})


def report(check: SpotCheck) -> CheckReport:
    return CheckReport(JOB.job_id, VERIFIER, check)


def outcome(**changes: Any) -> DisputeOutcome:
    return DisputeOutcome(JOB.job_id, HONEST, dataclasses.replace(RESULT, **changes))


def ruling(result: DisputeResult = RESULT, key_of: str = REFEREE, **changes: Any) -> Signed:
    """The referee's ruling on ``result``, signed with ``key_of``'s key (default: the referee's)."""
    sk, _ = party_keypair(SPEC, key_of)
    return sign_message(dataclasses.replace(compute_ruling(JOB.job_id, result), **changes), sk, REFEREE)


# -- states, built by the transitions ------------------------------------------------------------
def apply(state: JobState, *messages: tuple[Kind, Any]) -> JobState:
    for kind, message in messages:
        state = process_message(JOB, state, kind, message)
    return state


GENESIS = compute_genesis_state(JOB, COIN)
ONE_COMMITTED = apply(GENESIS, (Kind.COMMIT, SIGNED[HONEST]))
COMMITTED = apply(ONE_COMMITTED, (Kind.COMMIT, SIGNED[BITFLIP]))
REVEALED = apply(COMMITTED, (Kind.REVEAL, REVEAL))
REVEALED_ONE = apply(ONE_COMMITTED, (Kind.REVEAL, REVEAL))  # bitflip never committed
HONEST_CHECKED = apply(REVEALED, (Kind.CHECK, report(CHECK_OK)))
CHECKED = apply(HONEST_CHECKED, (Kind.CHECK, report(SKIPPED)))
MISMATCHED = apply(REVEALED, (Kind.CHECK, report(CHECK_MISMATCH)), (Kind.CHECK, report(SKIPPED)))
CHALLENGED = apply(MISMATCHED, (Kind.CHALLENGE, CHALLENGE))
BISECTED = apply(CHALLENGED, (Kind.DISPUTE, outcome()))
DISPUTED = apply(BISECTED, (Kind.RULE, ruling()))
AGREED = dataclasses.replace(RESULT, winner="solver", reason="the referee agreed")
FALSELY_DISPUTED = apply(CHALLENGED, (Kind.DISPUTE, outcome(winner="solver", reason="the referee agreed")),
                         (Kind.RULE, ruling(AGREED)))
SETTLED = apply(CHECKED, (Kind.SETTLE, SettleRequest(JOB.job_id)))


def commit_vectors() -> Iterator[Vector]:
    yield Vector(Kind.COMMIT, "first", "a solver's signed commitment joins the job", GENESIS, SIGNED[HONEST])
    yield Vector(Kind.COMMIT, "second", "the other solver commits too", ONE_COMMITTED, SIGNED[BITFLIP])
    yield Vector(Kind.COMMIT, "duplicate", "a solver commits once", ONE_COMMITTED, SIGNED[HONEST],
                 "DuplicateMessageError")
    yield Vector(Kind.COMMIT, "other_job", "a commitment to another job is a replay", GENESIS,
                 sign(build_commitment(HONEST, job_id=OTHER_JOB)), "WrongJobError")
    yield Vector(Kind.COMMIT, "wrong_key", "signed with another party's key", GENESIS,
                 sign(build_commitment(HONEST), key_of=BITFLIP), "ForgedMessageError")
    tampered = dataclasses.replace(SIGNED[HONEST], message=build_commitment(HONEST, trace_root=compute_root("x")))
    yield Vector(Kind.COMMIT, "tampered", "the signature does not verify on the message", GENESIS, tampered,
                 "ForgedMessageError")
    yield Vector(Kind.COMMIT, "unknown_solver", "a party that is no solver of the job", GENESIS,
                 sign(build_commitment("mallory")), "UnknownPartyError")
    yield Vector(Kind.COMMIT, "wrong_steps", "a commitment to another T", GENESIS,
                 sign(build_commitment(HONEST, steps=Step(SPEC.steps + 1))), "InvalidMessageError")
    yield Vector(Kind.COMMIT, "after_reveal", "no solver commits once the coin is revealed", REVEALED_ONE,
                 SIGNED[BITFLIP], "OutOfOrderError")


def reveal_vectors() -> Iterator[Vector]:
    yield Vector(Kind.REVEAL, "valid", "the secret opens the coin's commitment", COMMITTED, REVEAL)
    yield Vector(Kind.REVEAL, "wrong_secret", "a secret the coin did not commit to", COMMITTED,
                 dataclasses.replace(REVEAL, secret=bytes(32)), "ForgedMessageError")
    yield Vector(Kind.REVEAL, "other_job", "another job's reveal", COMMITTED,
                 dataclasses.replace(REVEAL, job_id=OTHER_JOB), "WrongJobError")
    yield Vector(Kind.REVEAL, "not_the_verifier", "only the job's verifier reveals", COMMITTED,
                 dataclasses.replace(REVEAL, verifier=PartyId(HONEST)), "UnknownPartyError")
    yield Vector(Kind.REVEAL, "twice", "the coin is revealed once", REVEALED, REVEAL, "OutOfOrderError")
    yield Vector(Kind.REVEAL, "no_coin", "a coin never committed to", apply(
        compute_genesis_state(JOB, None), (Kind.COMMIT, SIGNED[HONEST])), REVEAL, "OutOfOrderError")


def check_vectors() -> Iterator[Vector]:
    yield Vector(Kind.CHECK, "selected", "a check of a solver the coin selected", REVEALED, report(CHECK_OK))
    yield Vector(Kind.CHECK, "skipped", "a solver the coin did not select is left unchecked", HONEST_CHECKED,
                 report(SKIPPED))
    yield Vector(Kind.CHECK, "forfeit", "a solver without a commitment forfeits", REVEALED_ONE,
                 report(forfeited(BITFLIP, "interval", "no valid signed commitment to its run")))
    yield Vector(Kind.CHECK, "unselected", "a check of a solver the coin did not select", REVEALED,
                 report(dataclasses.replace(SKIPPED, checked=True)), "SelectionFaultError")
    yield Vector(Kind.CHECK, "uncommitted", "a mismatch of a trace nobody committed to", REVEALED_ONE,
                 report(dataclasses.replace(SKIPPED, mismatch=True)), "InvalidMessageError")
    yield Vector(Kind.CHECK, "duplicate", "a solver is checked once", HONEST_CHECKED, report(CHECK_OK),
                 "DuplicateMessageError")
    yield Vector(Kind.CHECK, "other_job", "another job's check", REVEALED,
                 CheckReport(OTHER_JOB, VERIFIER, CHECK_OK), "WrongJobError")
    yield Vector(Kind.CHECK, "not_the_verifier", "only the job's verifier checks", REVEALED,
                 CheckReport(JOB.job_id, PartyId(BITFLIP), CHECK_OK), "UnknownPartyError")
    yield Vector(Kind.CHECK, "before_reveal", "no check before the coin is revealed", COMMITTED,
                 report(CHECK_OK), "OutOfOrderError")


def challenge_vectors() -> Iterator[Vector]:
    yield Vector(Kind.CHALLENGE, "mismatch", "the verifier challenges the mismatch it found", MISMATCHED, CHALLENGE)
    yield Vector(Kind.CHALLENGE, "unfounded", "no challenge without a mismatch", MISMATCHED,
                 dataclasses.replace(CHALLENGE, solver_id=BITFLIP), "UnfoundedChallengeError")
    yield Vector(Kind.CHALLENGE, "duplicate", "a solver is challenged once", CHALLENGED, CHALLENGE,
                 "DuplicateMessageError")
    yield Vector(Kind.CHALLENGE, "other_job", "another job's challenge", MISMATCHED,
                 dataclasses.replace(CHALLENGE, job_id=OTHER_JOB), "WrongJobError")
    yield Vector(Kind.CHALLENGE, "not_the_verifier", "only the job's verifier challenges", MISMATCHED,
                 dataclasses.replace(CHALLENGE, challenger=PartyId(BITFLIP)), "UnknownPartyError")
    yield Vector(Kind.CHALLENGE, "before_every_check", "challenges follow all the checks",
                 apply(REVEALED, (Kind.CHECK, report(CHECK_MISMATCH))), CHALLENGE, "OutOfOrderError")


def dispute_vectors() -> Iterator[Vector]:
    yield Vector(Kind.DISPUTE, "challenger_wins", "the referee rules for the challenger", CHALLENGED, outcome())
    yield Vector(Kind.DISPUTE, "solver_wins", "the referee rules for the solver", CHALLENGED,
                 outcome(winner="solver", reason="the referee agreed"))
    yield Vector(Kind.DISPUTE, "unchallenged", "a dispute closes an open challenge", CHALLENGED,
                 dataclasses.replace(outcome(), solver_id=BITFLIP), "OutOfOrderError")
    yield Vector(Kind.DISPUTE, "duplicate", "a dispute closes once", DISPUTED, outcome(), "DuplicateMessageError")
    yield Vector(Kind.DISPUTE, "bad_winner", "a dispute is won by one of its parties", CHALLENGED,
                 outcome(winner="referee"), "InvalidMessageError")
    yield Vector(Kind.DISPUTE, "other_job", "another job's dispute", CHALLENGED,
                 dataclasses.replace(outcome(), job_id=OTHER_JOB), "WrongJobError")


def rule_vectors() -> Iterator[Vector]:
    yield Vector(Kind.RULE, "challenger_wins", "the referee's signed ruling closes the dispute", BISECTED, ruling())
    yield Vector(Kind.RULE, "solver_wins", "the referee rules for the solver",
                 apply(CHALLENGED, (Kind.DISPUTE, outcome(winner="solver", reason="the referee agreed"))),
                 ruling(AGREED))
    yield Vector(Kind.RULE, "forged", "a ruling signed with another key", BISECTED, ruling(key_of=VERIFIER),
                 "ForgedMessageError")
    yield Vector(Kind.RULE, "not_the_referee", "only the referee rules", BISECTED,
                 dataclasses.replace(ruling(), signer=VERIFIER), "UnknownPartyError")
    yield Vector(Kind.RULE, "other_winner", "the ruling says what the game found", BISECTED,
                 ruling(winner=PartyId("solver")), "InvalidMessageError")
    yield Vector(Kind.RULE, "other_game", "a ruling on a transcript no game ended at", BISECTED,
                 ruling(dispute_id=compute_root("another transcript").hex()), "OutOfOrderError")
    yield Vector(Kind.RULE, "duplicate", "a dispute is ruled on once", DISPUTED, ruling(), "DuplicateMessageError")
    yield Vector(Kind.RULE, "other_job", "another job's ruling", BISECTED, ruling(job_id=OTHER_JOB),
                 "WrongJobError")
    yield Vector(Kind.RULE, "unsigned", "a ruling is a signed message", BISECTED,
                 compute_ruling(JOB.job_id, RESULT), "InvalidMessageError")


def settle_vectors() -> Iterator[Vector]:
    request = SettleRequest(JOB.job_id)
    yield Vector(Kind.SETTLE, "paid", "honest checked and paid, bitflip unverified", CHECKED, request)
    yield Vector(Kind.SETTLE, "slashed", "the challenger won: the solver is slashed", DISPUTED, request)
    yield Vector(Kind.SETTLE, "false_challenge", "the solver won: paid, the challenger loses its bond",
                 FALSELY_DISPUTED, request)
    yield Vector(Kind.SETTLE, "unchecked", "every solver is checked first", HONEST_CHECKED, request,
                 "OutOfOrderError")
    yield Vector(Kind.SETTLE, "open_challenge", "every challenge is closed first", CHALLENGED, request,
                 "OutOfOrderError")
    yield Vector(Kind.SETTLE, "unruled", "every dispute is ruled on first", BISECTED, request, "OutOfOrderError")
    yield Vector(Kind.SETTLE, "before_reveal", "no settlement before the checks", COMMITTED, request,
                 "OutOfOrderError")
    yield Vector(Kind.SETTLE, "twice", "a job settles once", SETTLED, request, "OutOfOrderError")
    yield Vector(Kind.SETTLE, "other_job", "another job's settlement", CHECKED, SettleRequest(OTHER_JOB),
                 "WrongJobError")


GENERATORS: tuple[Callable[[], Iterator[Vector]], ...] = (
    commit_vectors, reveal_vectors, check_vectors, challenge_vectors, dispute_vectors, rule_vectors, settle_vectors)


def compute_post(job: Job, vector: Vector) -> dict[str, Any] | None:
    """The post-state the transition computes, ``None`` when it raises the vector's error."""
    try:
        post = process_message(job, vector.pre, vector.transition, vector.message)
    except ProtocolError as exc:
        if type(exc).__name__ != vector.error:
            raise RuntimeError(f"{vector.transition}/{vector.case}: raised {type(exc).__name__}: {exc}") from exc
        return None
    if vector.error is not None:
        raise RuntimeError(f"{vector.transition}/{vector.case}: accepted, expected {vector.error}")
    return encode_state(post)


def encode_vector(vector: Vector) -> dict[str, Any]:
    return {"transition": str(vector.transition), "case": vector.case, "description": vector.description,
            "job": encode_job(JOB), "pre": encode_state(vector.pre),
            "message": encode_message(vector.transition, vector.message),
            "post": compute_post(JOB, vector), "error": vector.error}


def write_vectors(root: Path = VECTORS) -> list[Path]:
    for stale in root.glob("*/*.json"):
        stale.unlink()
    written = []
    for generate in GENERATORS:
        for vector in generate():
            path = root / str(vector.transition) / f"{vector.case}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(encode_vector(vector), indent=1, sort_keys=True) + "\n")
            written.append(path)
    return written


def main() -> int:
    written = write_vectors()
    print(f"wrote {len(written)} vectors under {VECTORS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
