"""Every test vector replayed through the transitions (consensus-specs' runner).

A vector (``tests/protocol/make_vectors.py``) is a job, a pre-state, a message and the post-state,
or the name of the error; the transition must compute exactly that post-state, or raise exactly
that error and leave the pre-state as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.protocol.codec import decode_job, decode_message, decode_state, encode_state
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
        assert encode_state(process_message(job, pre, kind, message)) == vector["post"]
    else:
        with pytest.raises(getattr(protocol, vector["error"])):
            process_message(job, pre, kind, message)
    assert encode_state(pre) == vector["pre"]  # the transition never changes its input
