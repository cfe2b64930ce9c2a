"""Every test vector replayed through the transitions (consensus-specs' runner).

A vector (``tests/protocol/make_vectors.py``) is a job, a pre-state, a message and the post-state,
or the name of the error; the transition must compute exactly that post-state, or raise exactly
that error and leave the pre-state as it was. A settle vector's post-state, settled on a fresh
ledger, must move exactly its ``settlement``'s transfers, and conserve the supply.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.protocol import make_vectors as mv
from tests.protocol.codec import (
    decode_job,
    decode_message,
    decode_state,
    encode_settlement,
    encode_state,
)
from verification import protocol
from verification.protocol import Kind, process_message

VECTORS = Path(__file__).resolve().parent / "vectors"
FILES = sorted(VECTORS.glob("*/*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_transition_has_vectors_of_acceptance_and_of_refusal():
    by_kind = {kind: [load(p) for p in FILES if p.parent.name == kind] for kind in Kind}
    for kind, vectors in by_kind.items():
        assert any(v["error"] is None for v in vectors), f"{kind}: no vector where the message is accepted"
        assert any(v["error"] is not None for v in vectors), f"{kind}: no vector where it is refused"


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_vector(path):
    vector = load(path)
    kind = Kind(vector["transition"])
    job, pre = decode_job(vector["job"]), decode_state(vector["pre"])
    message = decode_message(kind, vector["message"])
    assert encode_state(pre) == vector["pre"]  # the codec round-trips the state
    if vector["error"] is None:
        post = process_message(job, pre, kind, message)
        assert encode_state(post) == vector["post"]
        if kind is Kind.SETTLE:
            settlement = encode_settlement(mv.settle_on_a_fresh_ledger(job, post))
            assert settlement == vector["settlement"]
            assert settlement["supply_before"] == settlement["supply_after"]  # every transfer moves, none mints
    else:
        with pytest.raises(getattr(protocol, vector["error"])):
            process_message(job, pre, kind, message)
    assert encode_state(pre) == vector["pre"]  # the transition never changes its input


def test_the_vectors_on_disk_are_the_ones_make_vectors_writes():
    stored = {(p.parent.name, p.stem): load(p) for p in FILES}
    if any(v["job"]["job_id"] not in (mv.JOB.job_id, mv.FORCED.job_id, mv.COMMITTEE.job_id) for v in stored.values()):
        pytest.skip("the job id binds the torch release, and this one differs from the vectors': "
                    "run python -m tests.protocol.make_vectors to compare")
    generated = {(str(v.transition), v.case): mv.encode_vector(v) for generate in mv.GENERATORS for v in generate()}
    assert generated.keys() == stored.keys()
    stale = [key for key, vector in generated.items() if vector != stored[key]]
    assert not stale, f"vectors {stale} are stale: run python -m tests.protocol.make_vectors"
