"""Write the protocol's test vectors: ``python -m tests.protocol.make_vectors``.

One JSON file per case, ``tests/protocol/vectors/<transition>/<case>.json``, in consensus-specs'
shape: the job, the pre-state, the message, and either the post-state or the name of the error
the transition raises (then the state is unchanged). The states are built by the transitions
themselves from one small job (two solvers, ``p = 0.5``, a coin whose secret selects ``honest``
and not ``bitflip``) and from the same job at a forced-error rate of 100 % (``FORCED``: every
solver is drawn, Truebit §4.4), and from a job whose committee has two verifiers (``COMMITTEE``:
the lead and an attester, each with a coin of its own; the attester finds and challenges a
forced error the lead skipped); the messages are signed with the jobs' demo keys, so every
signature in a vector is real, aggregate attestations included. A settle vector also holds ``settlement``: what its post-state's
verdicts move on a fresh ledger (``settle_job``). ``tests/protocol/test_vectors.py`` replays them.
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

from proofs.messages import (
    AggregateAttestation,
    Commitment,
    Signed,
    aggregate_attestations,
    sign_message,
)
from proofs.types import JobId, PartyId, Root, SolverId, Step
from tests.protocol.codec import encode_job, encode_message, encode_settlement, encode_state
from verification.dispute import DisputeResult
from verification.execution.opgraph import COMMIT_OP
from verification.job import REFEREE, Job, get_committee, resolve_job
from verification.protocol import (
    Challenge,
    CheckReport,
    DisputeOutcome,
    JobState,
    Kind,
    ProtocolError,
    SettleRequest,
    compute_attestation,
    compute_genesis_state,
    compute_ruling,
    process_message,
)
from verification.settlement import SettlementResult, settle_job
from verification.settlement.ledger import MEMORY, Ledger
from verification.solver import compute_forced_error_ticket, party_keypair
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
    job: Job = JOB


# -- the job's messages ------------------------------------------------------------------------
def compute_root(label: str) -> Root:
    return Root(hashlib.sha256(label.encode()).digest())


def build_commitment(solver_id: str, job: Job = JOB, **changes: Any) -> Commitment:
    return dataclasses.replace(Commitment(job.job_id, SolverId(solver_id), compute_root(f"{solver_id}/trace"),
                                          compute_root(f"{solver_id}/final"), Step(job.spec.steps),
                                          Step(job.spec.checkpoint_interval), "vectors"), **changes)


def sign(commitment: Commitment, key_of: str | None = None, job: Job = JOB) -> Signed:
    """``commitment`` signed as its solver, with the key of ``key_of`` (default: its own)."""
    sk, _ = party_keypair(job.spec, key_of or commitment.solver_id)
    return sign_message(commitment, sk, PartyId(commitment.solver_id))


def sign_all(job: Job) -> dict[SolverId, Signed]:
    return {sid: sign(build_commitment(sid, job), job=job) for sid in (HONEST, BITFLIP)}


SIGNED = sign_all(JOB)


def find_secret(job: Job, signed: dict[SolverId, Signed], verifier: PartyId = VERIFIER,
                picks: tuple[bool, bool] = (True, False)) -> bytes:
    """The first secret ``sha256(i)`` whose coin for ``verifier`` selects ``honest`` and
    ``bitflip`` as ``picks`` says (default: honest and not bitflip)."""
    for i in range(10_000):
        secret = hashlib.sha256(i.to_bytes(4, "big")).digest()
        reveal = CoinReveal(job.job_id, verifier, secret)
        found = tuple(is_selected_for_check(reveal, sid, signed[sid].signature, job.spec.spot_check_probability,
                                            job.spec.hashing) for sid in (HONEST, BITFLIP))
        if found == picks:
            return secret
    raise RuntimeError(f"no secret of {verifier} selects {picks} of honest, bitflip")


def build_coin(job: Job, secret: bytes, verifier: PartyId = VERIFIER) -> CoinCommitment:
    return CoinCommitment(job.job_id, verifier, compute_coin_commitment(job.job_id, verifier, secret,
                                                                        job.spec.hashing))


def attest(check: SpotCheck, job: Job = JOB, signers: tuple[str, ...] = (VERIFIER,), key_of: str | None = None,
           **changes: Any) -> AggregateAttestation:
    """The aggregate attestation of ``signers`` to ``check`` of the solver's vector commitment,
    each signing with its own key (or all with ``key_of``'s); ``changes`` tamper with it after."""
    signed = []
    for verifier in signers:
        message = compute_attestation(job, PartyId(verifier), check, build_commitment(check.solver_id, job).trace_root)
        signed.append(sign_message(message, party_keypair(job.spec, key_of or verifier)[0], PartyId(verifier)))
    return dataclasses.replace(aggregate_attestations(signed), **changes)


SECRET = find_secret(JOB, SIGNED)
COIN = build_coin(JOB, SECRET)
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


def report(check: SpotCheck, job: Job = JOB, verifier: str = VERIFIER) -> CheckReport:
    return CheckReport(job.job_id, PartyId(verifier), check)


def outcome(job: Job = JOB, **changes: Any) -> DisputeOutcome:
    return DisputeOutcome(job.job_id, HONEST, dataclasses.replace(RESULT, **changes))


def ruling(result: DisputeResult = RESULT, key_of: str = REFEREE, job: Job = JOB, **changes: Any) -> Signed:
    """The referee's ruling on ``result``, signed with ``key_of``'s key (default: the referee's)."""
    sk, _ = party_keypair(job.spec, key_of)
    return sign_message(dataclasses.replace(compute_ruling(job.job_id, result), **changes), sk, REFEREE)


# -- states, built by the transitions ------------------------------------------------------------
def apply(state: JobState, *messages: tuple[Kind, Any], job: Job = JOB) -> JobState:
    for kind, message in messages:
        state = process_message(job, state, kind, message)
    return state


GENESIS = compute_genesis_state(JOB, [COIN])
ONE_COMMITTED = apply(GENESIS, (Kind.COMMIT, SIGNED[HONEST]))
COMMITTED = apply(ONE_COMMITTED, (Kind.COMMIT, SIGNED[BITFLIP]))
REVEALED = apply(COMMITTED, (Kind.REVEAL, REVEAL))
REVEALED_ONE = apply(ONE_COMMITTED, (Kind.REVEAL, REVEAL))  # bitflip never committed
HONEST_CHECKED = apply(REVEALED, (Kind.CHECK, report(CHECK_OK)))
CHECKED = apply(HONEST_CHECKED, (Kind.CHECK, report(SKIPPED)))  # honest's check not attested yet
ATTESTED = apply(CHECKED, (Kind.ATTEST, attest(CHECK_OK)))
MISMATCHED = apply(REVEALED, (Kind.CHECK, report(CHECK_MISMATCH)), (Kind.CHECK, report(SKIPPED)),
                   (Kind.ATTEST, attest(CHECK_MISMATCH)))
CHALLENGED = apply(MISMATCHED, (Kind.CHALLENGE, CHALLENGE))
BISECTED = apply(CHALLENGED, (Kind.DISPUTE, outcome()))
DISPUTED = apply(BISECTED, (Kind.RULE, ruling()))
AGREED = dataclasses.replace(RESULT, winner="solver", reason="the referee agreed")
FALSELY_DISPUTED = apply(CHALLENGED, (Kind.DISPUTE, outcome(winner="solver", reason="the referee agreed")),
                         (Kind.RULE, ruling(AGREED)))
SETTLED = apply(ATTESTED, (Kind.SETTLE, SettleRequest(JOB.job_id)))

# -- a job that draws every solver for a forced error (Truebit §4.4) ---------------------------
# The same job at a forced-error rate of 100 %: each solver's ticket (its signature on its draw)
# draws, so each must flip its final state on purpose and reveals its ticket when the job settles.
FORCED_SPEC = dataclasses.replace(SPEC, economics=dataclasses.replace(SPEC.economics, forced_error_rate_bps=10_000))
FORCED = resolve_job(FORCED_SPEC)
FORCED_SIGNED = sign_all(FORCED)
FORCED_SECRET = find_secret(FORCED, FORCED_SIGNED)
FORCED_REVEALED = apply(compute_genesis_state(FORCED, [build_coin(FORCED, FORCED_SECRET)]),
                        (Kind.COMMIT, FORCED_SIGNED[HONEST]), (Kind.COMMIT, FORCED_SIGNED[BITFLIP]),
                        (Kind.REVEAL, CoinReveal(FORCED.job_id, VERIFIER, FORCED_SECRET)), job=FORCED)
TICKETS = {sid: compute_forced_error_ticket(FORCED_SPEC, FORCED.job_id, sid).hex() for sid in (HONEST, BITFLIP)}

LAST_INTERVAL = FORCED_SPEC.num_checkpoints - 2  # the interval ending at S_T, where the forced error is
CHECK_LAST = dataclasses.replace(CHECK_OK, intervals=(LAST_INTERVAL,), mismatch=True, disputed_interval=LAST_INTERVAL)
FORCED_FOUND = dataclasses.replace(RESULT, first_divergent_step=Step(FORCED_SPEC.steps), operator=COMMIT_OP,
                                   reason="the referee recomputed the commit of S_T")
FORCED_CHECKED = apply(FORCED_REVEALED, (Kind.CHECK, report(CHECK_OK, FORCED)), (Kind.CHECK, report(SKIPPED, FORCED)),
                       (Kind.ATTEST, attest(CHECK_OK, FORCED)), job=FORCED)


def build_disputed(job: Job, check: SpotCheck, result: DisputeResult) -> JobState:
    """``job``'s revealed state, honest's mismatch ``check`` challenged, bisected to ``result`` and
    ruled on; bitflip left unchecked."""
    pre = FORCED_REVEALED if job is FORCED else REVEALED
    return apply(pre, (Kind.CHECK, report(check, job)), (Kind.CHECK, report(SKIPPED, job)),
                 (Kind.ATTEST, attest(check, job)),
                 (Kind.CHALLENGE, Challenge(job.job_id, VERIFIER, HONEST, check.disputed_interval)),
                 (Kind.DISPUTE, DisputeOutcome(job.job_id, HONEST, result)),
                 (Kind.RULE, ruling(result, job=job)), job=job)


FORCED_DISPUTED = build_disputed(FORCED, CHECK_LAST, FORCED_FOUND)
FORCED_TOO_EARLY = build_disputed(FORCED, CHECK_MISMATCH, RESULT)  # the game ends at step 6, not at T

# -- a committee of two verifiers, every solver drawn for a forced error -------------------------
# The lead verifier's coin selects nobody; the attester's selects honest and finds its forced
# error in the last interval: the attester challenges it, and the jackpot pays the attester.
ATTESTER = PartyId("attester")
COMMITTEE_SPEC = dataclasses.replace(FORCED_SPEC, name="vectors-committee", attesters=(ATTESTER,))
COMMITTEE = resolve_job(COMMITTEE_SPEC)
COMMITTEE_SIGNED = sign_all(COMMITTEE)
COMMITTEE_TICKET = compute_forced_error_ticket(COMMITTEE_SPEC, COMMITTEE.job_id, HONEST).hex()
LEAD_SECRET = find_secret(COMMITTEE, COMMITTEE_SIGNED, VERIFIER, (False, False))
ATTESTER_SECRET = find_secret(COMMITTEE, COMMITTEE_SIGNED, ATTESTER, (True, False))
ATTESTER_REVEAL = CoinReveal(COMMITTEE.job_id, ATTESTER, ATTESTER_SECRET)


def build_committee_committed(lead_secret: bytes) -> JobState:
    """The committee job with both solvers committed, the lead's coin drawn from ``lead_secret``."""
    genesis = compute_genesis_state(COMMITTEE, [build_coin(COMMITTEE, lead_secret),
                                                build_coin(COMMITTEE, ATTESTER_SECRET, ATTESTER)])
    return apply(genesis, (Kind.COMMIT, COMMITTEE_SIGNED[HONEST]), (Kind.COMMIT, COMMITTEE_SIGNED[BITFLIP]),
                 job=COMMITTEE)


def build_committee_revealed(lead_secret: bytes) -> JobState:
    return apply(build_committee_committed(lead_secret),
                 (Kind.REVEAL, CoinReveal(COMMITTEE.job_id, VERIFIER, lead_secret)), (Kind.REVEAL, ATTESTER_REVEAL),
                 job=COMMITTEE)


COMMITTEE_COMMITTED = build_committee_committed(LEAD_SECRET)
COMMITTEE_REVEALED = build_committee_revealed(LEAD_SECRET)
COMMITTEE_CHECKED = apply(COMMITTEE_REVEALED,
                          (Kind.CHECK, report(not_checked(HONEST, "interval"), COMMITTEE)),
                          (Kind.CHECK, report(not_checked(BITFLIP, "interval"), COMMITTEE)),
                          (Kind.CHECK, report(CHECK_LAST, COMMITTEE, ATTESTER)),
                          (Kind.CHECK, report(SKIPPED, COMMITTEE, ATTESTER)),
                          job=COMMITTEE)
COMMITTEE_ATTEST = attest(CHECK_LAST, COMMITTEE, (ATTESTER,))
COMMITTEE_ATTESTED = apply(COMMITTEE_CHECKED, (Kind.ATTEST, COMMITTEE_ATTEST), job=COMMITTEE)
COMMITTEE_CHALLENGE = Challenge(COMMITTEE.job_id, ATTESTER, HONEST, LAST_INTERVAL)
COMMITTEE_DISPUTED = apply(COMMITTEE_ATTESTED, (Kind.CHALLENGE, COMMITTEE_CHALLENGE),
                           (Kind.DISPUTE, DisputeOutcome(COMMITTEE.job_id, HONEST, FORCED_FOUND)),
                           (Kind.RULE, ruling(FORCED_FOUND, job=COMMITTEE)), job=COMMITTEE)
# Both verifiers' coins select honest; both check it and agree: one aggregate signature of the two.
BOTH_SECRET = find_secret(COMMITTEE, COMMITTEE_SIGNED, VERIFIER, (True, False))
BOTH_CHECKED = apply(build_committee_revealed(BOTH_SECRET),
                     (Kind.CHECK, report(CHECK_OK, COMMITTEE)),
                     (Kind.CHECK, report(not_checked(BITFLIP, "interval"), COMMITTEE)),
                     (Kind.CHECK, report(CHECK_OK, COMMITTEE, ATTESTER)),
                     (Kind.CHECK, report(SKIPPED, COMMITTEE, ATTESTER)), job=COMMITTEE)


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
    yield Vector(Kind.REVEAL, "twice", "a verifier reveals its coin once", REVEALED, REVEAL, "DuplicateMessageError")
    yield Vector(Kind.REVEAL, "no_coin", "a coin never committed to", apply(
        compute_genesis_state(JOB), (Kind.COMMIT, SIGNED[HONEST])), REVEAL, "OutOfOrderError")
    lead_revealed = apply(COMMITTEE_COMMITTED, (Kind.REVEAL, CoinReveal(COMMITTEE.job_id, VERIFIER, LEAD_SECRET)),
                          job=COMMITTEE)
    yield Vector(Kind.REVEAL, "attester", "each verifier of the committee reveals its own coin", lead_revealed,
                 ATTESTER_REVEAL, job=COMMITTEE)
    yield Vector(Kind.REVEAL, "attester_wrong_secret", "an attester's reveal must open its own coin",
                 lead_revealed, dataclasses.replace(ATTESTER_REVEAL, secret=LEAD_SECRET), "ForgedMessageError",
                 job=COMMITTEE)


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
    lead_revealed = apply(COMMITTEE_COMMITTED, (Kind.REVEAL, CoinReveal(COMMITTEE.job_id, VERIFIER, LEAD_SECRET)),
                          job=COMMITTEE)
    yield Vector(Kind.CHECK, "before_own_reveal", "an attester checks only after it revealed its own coin",
                 lead_revealed, report(CHECK_LAST, COMMITTEE, ATTESTER), "OutOfOrderError", job=COMMITTEE)
    yield Vector(Kind.CHECK, "attester_selected", "an attester checks the solver its own coin selected",
                 COMMITTEE_REVEALED, report(CHECK_LAST, COMMITTEE, ATTESTER), job=COMMITTEE)
    yield Vector(Kind.CHECK, "attester_unselected", "the lead's check is audited against the lead's coin, "
                 "which did not select honest", COMMITTEE_REVEALED, report(CHECK_LAST, COMMITTEE),
                 "SelectionFaultError", job=COMMITTEE)


def attest_vectors() -> Iterator[Vector]:
    yield Vector(Kind.ATTEST, "valid", "the verifier signs its conclusive check", CHECKED, attest(CHECK_OK))
    yield Vector(Kind.ATTEST, "mismatch", "an attestation of a mismatch carries verdict false", COMMITTEE_CHECKED,
                 COMMITTEE_ATTEST, job=COMMITTEE)
    yield Vector(Kind.ATTEST, "tampered_verdict", "a verdict other than the one signed", CHECKED,
                 attest(CHECK_OK, verdict=False), "ForgedMessageError")
    yield Vector(Kind.ATTEST, "wrong_key", "signed with a solver's key", CHECKED, attest(CHECK_OK, key_of=HONEST),
                 "ForgedMessageError")
    yield Vector(Kind.ATTEST, "unregistered_verifier", "signed by a party that is no verifier of the job", CHECKED,
                 attest(CHECK_OK, signers=("mallory",)), "ForgedMessageError")
    yield Vector(Kind.ATTEST, "solver_signs", "a solver is no verifier, though its key is registered", CHECKED,
                 attest(CHECK_OK, signers=(HONEST,)), "ForgedMessageError")
    yield Vector(Kind.ATTEST, "unchecked", "no attestation of a solver the verifier did not check", CHECKED,
                 attest(dataclasses.replace(CHECK_OK, solver_id=BITFLIP)), "InvalidMessageError")
    yield Vector(Kind.ATTEST, "other_verdict", "the verdict of the verifier's own check", CHECKED,
                 attest(CHECK_MISMATCH), "InvalidMessageError")
    yield Vector(Kind.ATTEST, "duplicate", "a verifier attests once per solver", ATTESTED, attest(CHECK_OK),
                 "DuplicateMessageError")
    yield Vector(Kind.ATTEST, "other_job", "another job's attestation", CHECKED,
                 attest(CHECK_OK, job_id=OTHER_JOB), "WrongJobError")
    yield Vector(Kind.ATTEST, "after_challenge", "attestations precede the challenges", CHALLENGED,
                 attest(CHECK_MISMATCH), "OutOfOrderError")
    yield Vector(Kind.ATTEST, "aggregate", "two verifiers reach one verdict: one aggregate signature "
                 "(FastAggregateVerify)", BOTH_CHECKED, attest(CHECK_OK, COMMITTEE, (VERIFIER, ATTESTER)), job=COMMITTEE)
    two = attest(CHECK_OK, COMMITTEE, (VERIFIER, ATTESTER))
    yield Vector(Kind.ATTEST, "aggregate_missing_signer", "an aggregate that names a signer whose signature it "
                 "lacks", BOTH_CHECKED, dataclasses.replace(two, signature=attest(CHECK_OK, COMMITTEE).signature),
                 "ForgedMessageError", job=COMMITTEE)
    yield Vector(Kind.ATTEST, "aggregate_unchecked_signer", "the lead's coin did not select honest: it cannot "
                 "co-sign an attestation to it", COMMITTEE_CHECKED, attest(CHECK_LAST, COMMITTEE, (ATTESTER, VERIFIER)),
                 "InvalidMessageError", job=COMMITTEE)


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
    yield Vector(Kind.CHALLENGE, "attester", "the attester that found the mismatch challenges it",
                 COMMITTEE_ATTESTED, COMMITTEE_CHALLENGE, job=COMMITTEE)
    yield Vector(Kind.CHALLENGE, "not_the_finder", "a verifier that found no mismatch does not challenge",
                 COMMITTEE_ATTESTED, dataclasses.replace(COMMITTEE_CHALLENGE, challenger=VERIFIER),
                 "UnfoundedChallengeError", job=COMMITTEE)


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
    yield Vector(Kind.SETTLE, "paid", "honest checked and paid, bitflip unverified", ATTESTED, request)
    yield Vector(Kind.SETTLE, "unattested", "a conclusive check counts only with its verifier's attestation",
                 CHECKED, request, "UnattestedCheckError")
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
    yield Vector(Kind.SETTLE, "other_job", "another job's settlement", ATTESTED, SettleRequest(OTHER_JOB),
                 "WrongJobError")


def forced_error_vectors() -> Iterator[Vector]:
    """Settling a job whose solvers were drawn for a forced error (Truebit §4.4): the ticket each
    reveals is its signature on its draw; a forced error found pays the solver as correct work and
    the finding verifier from the jackpot, one missed is visible in its verdict."""
    def settle(*tickets: tuple[SolverId, str]) -> SettleRequest:
        return SettleRequest(FORCED.job_id, tickets)

    honest, bitflip = (HONEST, TICKETS[HONEST]), (BITFLIP, TICKETS[BITFLIP])
    yield Vector(Kind.SETTLE, "forced_error_found", "honest's forced error at step T is found: it is paid, the "
                 "verifier is paid from the jackpot, supply is conserved", FORCED_DISPUTED, settle(honest),
                 job=FORCED)
    yield Vector(Kind.SETTLE, "forced_error_missed", "both solvers were drawn; the check of honest saw nothing, "
                 "bitflip was not checked: each verdict carries its ticket, no jackpot payout", FORCED_CHECKED,
                 settle(honest, bitflip), job=FORCED)
    yield Vector(Kind.SETTLE, "forced_error_too_early", "a forced error excuses only step T: a dispute won at "
                 "step 6 slashes the solver and pays no jackpot", FORCED_TOO_EARLY, settle(honest), job=FORCED)
    undrawn = (HONEST, compute_forced_error_ticket(SPEC, JOB.job_id, HONEST).hex())
    yield Vector(Kind.SETTLE, "undrawn_ticket", "a jackpot claim with a valid ticket that draws no forced error "
                 "(a job at the default 1 %)", DISPUTED, SettleRequest(JOB.job_id, (undrawn,)),
                 "UnfoundedJackpotClaimError")
    yield Vector(Kind.SETTLE, "forged_ticket", "a ticket that is another solver's signature", FORCED_DISPUTED,
                 settle((HONEST, TICKETS[BITFLIP])), "ForgedMessageError", job=FORCED)
    yield Vector(Kind.SETTLE, "malformed_ticket", "a ticket that is not hex", FORCED_DISPUTED,
                 settle((HONEST, "zz")), "InvalidMessageError", job=FORCED)
    yield Vector(Kind.SETTLE, "unknown_solver_ticket", "a ticket of a party that is no solver of the job",
                 FORCED_DISPUTED, settle((SolverId("mallory"), TICKETS[HONEST])), "UnknownPartyError", job=FORCED)
    yield Vector(Kind.SETTLE, "duplicate_ticket", "a solver reveals its ticket once", FORCED_DISPUTED,
                 settle(honest, honest), "DuplicateMessageError", job=FORCED)
    yield Vector(Kind.SETTLE, "forced_error_found_by_attester", "the lead verifier skipped honest, the attester "
                 "found its forced error and challenged: the jackpot pays the attester, both verifiers get their "
                 "fee", COMMITTEE_DISPUTED, SettleRequest(COMMITTEE.job_id, ((HONEST, COMMITTEE_TICKET),)),
                 job=COMMITTEE)


GENERATORS: tuple[Callable[[], Iterator[Vector]], ...] = (
    commit_vectors, reveal_vectors, check_vectors, attest_vectors, challenge_vectors, dispute_vectors, rule_vectors,
    settle_vectors, forced_error_vectors)


def compute_post(vector: Vector) -> JobState | None:
    """The post-state the transition computes, ``None`` when it raises the vector's error."""
    try:
        post = process_message(vector.job, vector.pre, vector.transition, vector.message)
    except ProtocolError as exc:
        if type(exc).__name__ != vector.error:
            raise RuntimeError(f"{vector.transition}/{vector.case}: raised {type(exc).__name__}: {exc}") from exc
        return None
    if vector.error is not None:
        raise RuntimeError(f"{vector.transition}/{vector.case}: accepted, expected {vector.error}")
    return post


def settle_on_a_fresh_ledger(job: Job, state: JobState) -> SettlementResult:
    """A settled state's verdicts applied to an empty ledger (``settle_job``: funding, lock,
    bonds, settlement): what they move, the jackpot holding only this job's tax."""
    ledger = Ledger(MEMORY)
    try:
        return settle_job(ledger, job.job_id, job.spec.submitter, job.terms, list(state.verdicts),
                          verifiers=list(get_committee(job)))
    finally:
        ledger.close()


def encode_vector(vector: Vector) -> dict[str, Any]:
    post = compute_post(vector)
    encoded = {"transition": str(vector.transition), "case": vector.case, "description": vector.description,
               "job": encode_job(vector.job), "pre": encode_state(vector.pre),
               "message": encode_message(vector.transition, vector.message),
               "post": None if post is None else encode_state(post), "error": vector.error}
    if vector.transition is Kind.SETTLE:  # what the fixed verdicts move on the ledger
        encoded["settlement"] = None if post is None else encode_settlement(settle_on_a_fresh_ledger(vector.job, post))
    return encoded


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
