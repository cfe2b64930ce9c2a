"""Operator recording, the canonical schedule, and one-operator re-execution by the referee."""

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from proofs.hashing import DOMAIN_OPS, SHA256
from proofs.merkle import hash_leaf, verify_merkle_proof
from proofs.types import Step
from verification.execution.opgraph import (
    COMMIT_OP,
    InputRef,
    OpGraphError,
    OpRecord,
    compute_chain_end,
    decode_argument,
    derive_schedule,
    encode_argument,
    get_input_ops,
    get_structure,
    hash_array,
    is_computation,
    open_operands,
    record_step,
    reopen_outputs,
    resolve_operator,
)
from verification.execution.program import load_program
from verification.referee import RefereeError, rule_on_output
from verification.strategies import Honest

STEP = Step(5)


class OpLog(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if is_computation(func):
            self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.fixture(scope="module")
def pre(game_program):
    return game_program.run(game_program.init_state(), Step(STEP - 1))


@pytest.fixture(scope="module")
def trace(game_program, pre):
    return record_step(game_program, Honest(), pre, game_program.spec.hashing)


def agreed_digest(trace, index):
    return trace.genesis if index == 0 else trace.digests[index - 1]


def test_recording_does_not_change_the_step(game_program, pre, trace):
    batch = game_program.batch(STEP)
    with OpLog() as log:
        out = game_program.step(pre, batch)
    assert [r.op for r in trace.records[:-1]] == log.ops
    assert trace.records[-1].op == COMMIT_OP
    assert trace.records[-1].outputs == (out.state.root(game_program.spec.hashing).hex(),)


@pytest.mark.parametrize("fields", [{}, {"micro_batches": 2}, {"mode": "reproducible"},
                                    {"mode": "reproducible", "model": "cnn", "model_params": {"channels": 4}}],
                         ids=["exact", "micro-batches", "reproducible", "reproducible-cnn"])
def test_the_fake_tensor_schedule_is_the_recorded_one(game_spec, minimal_dataset, fields):
    program = load_program(dataclasses.replace(game_spec, **fields), minimal_dataset[0])
    pre = program.run(program.init_state(), Step(STEP - 1))
    recorded = record_step(program, Honest(), pre, game_spec.hashing)
    assert [get_structure(r) for r in recorded.records] == derive_schedule(program, STEP)


def test_the_recorded_step_does_not_depend_on_the_order_of_the_states_names(game_spec, minimal_dataset):
    """A State read from a checkpoint lists its names sorted, one computed in memory in the order
    torch.optim created its keys: both must record the same step (an honest challenger resumed
    from a checkpoint lost a dispute to that once)."""
    program = load_program(dataclasses.replace(game_spec, optimizer="adamw"), minimal_dataset[0])
    pre = program.run(program.init_state(), Step(STEP - 1))
    shuffled = dataclasses.replace(pre, tensors=dict(reversed(pre.tensors.items())))
    assert list(shuffled.tensors) != list(pre.tensors)
    roots = {record_step(program, Honest(), s, game_spec.hashing).root for s in (pre, shuffled)}
    assert len(roots) == 1


@pytest.mark.parametrize("fields", [{}, {"mode": "reproducible"}], ids=["exact", "reproducible"])
def test_the_referee_reproduces_every_operator_of_an_honest_step(game_spec, minimal_dataset, fields):
    """Differential test: one operator, rebuilt from opened inputs, gives the recorded bits."""
    program = load_program(dataclasses.replace(game_spec, **fields), minimal_dataset[0])
    pre = program.run(program.init_state(), Step(STEP - 1))
    recorded = record_step(program, Honest(), pre, game_spec.hashing)
    for i, record in enumerate(recorded.records):
        ruling = rule_on_output(program, STEP, pre.root(game_spec.hashing), agreed_digest(recorded, i),
                                record, open_operands(recorded, pre, i))
        assert (ruling.winner, ruling.referee_ops, ruling.referee_outputs) == ("solver", 1, record.outputs), record.op


def test_op_digests_chain_and_open_against_the_root(trace):
    h = trace.hashing
    assert compute_chain_end(trace.genesis, trace.records, h) == trace.digests[-1]
    for index in (0, len(trace.records) // 2, len(trace.records) - 1):
        digest, proof = trace.digest_proof(index)
        assert verify_merkle_proof(trace.root, hash_leaf(digest, DOMAIN_OPS, h), proof, DOMAIN_OPS, h)
    changed = dataclasses.replace(trace.records[0], outputs=("00" * 32,))
    assert compute_chain_end(trace.genesis, (changed, *trace.records[1:]), h) != trace.digests[-1]


def first_with(trace, kind):
    return next(r for r in trace.records if any(ref.kind == kind for ref in r.inputs))


@pytest.mark.parametrize("kind", ["state", "op"])
def test_the_referee_refuses_an_input_that_is_not_the_agreed_one(game_program, pre, trace, kind):
    record = first_with(trace, kind)
    operands = open_operands(trace, pre, record.index)
    position = next(i for i, ref in enumerate(record.inputs) if ref.kind == kind)
    arrays = list(operands.arrays)
    arrays[position] = np.asarray(arrays[position]) + np.float32(1.0)
    forged = dataclasses.replace(operands, arrays=tuple(arrays))
    with pytest.raises(RefereeError):
        rule_on_output(game_program, STEP, pre.root(), agreed_digest(trace, record.index), record, forged)


def test_the_referee_refuses_a_segment_that_does_not_reach_the_agreed_digest(game_program, pre, trace):
    record = first_with(trace, "op")
    operands = open_operands(trace, pre, record.index)
    bad = dataclasses.replace(operands.segment[0], outputs=("11" * 32,))
    forged = dataclasses.replace(operands, segment=(bad, *operands.segment[1:]))
    with pytest.raises(RefereeError, match="chain"):
        rule_on_output(game_program, STEP, pre.root(), agreed_digest(trace, record.index), record, forged)


def test_a_wrong_claimed_output_loses_on_recomputation(game_program, pre, trace):
    record = next(r for r in trace.records if r.op == "aten.addmm.default")
    lying = dataclasses.replace(record, outputs=("22" * 32,))
    ruling = rule_on_output(game_program, STEP, pre.root(), agreed_digest(trace, record.index), lying,
                            open_operands(trace, pre, record.index))
    assert (ruling.winner, ruling.operator, ruling.referee_ops) == ("challenger", "aten.addmm.default", 1)


@given(st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
                    | st.sampled_from([torch.float32, torch.int64, torch.strided, torch.preserve_format]),
                    lambda inner: st.lists(inner, max_size=3), max_leaves=8))
@settings(max_examples=60, deadline=None)
def test_arguments_round_trip_through_their_canonical_form(value):
    encoded = encode_argument(value, lambda t: 0)
    decoded = decode_argument(encoded, [], torch.device("cpu"))
    assert encode_argument(decoded, lambda t: 0) == encoded


def test_only_aten_operators_can_be_called():
    assert resolve_operator("aten.addmm.default") is torch.ops.aten.addmm.default
    for name in ("builtins.eval.default", "aten.no_such_op.default", "aten"):
        with pytest.raises(OpGraphError):
            resolve_operator(name)


def test_a_streaming_recording_keeps_no_outputs_and_reopens_what_an_opening_needs(game_program, pre, trace):
    """Hashes only while recording; opening record i runs the step again and keeps only i's inputs,
    which equal those of a full recording."""
    streamed = record_step(game_program, Honest(), pre, game_program.spec.hashing, keep=frozenset())
    assert streamed.root == trace.root and streamed.outputs == {}
    index = max(i for i, r in enumerate(trace.records) if get_input_ops(r))
    with pytest.raises(OpGraphError, match="not kept"):
        open_operands(streamed, pre, index)
    reopened = reopen_outputs(game_program, Honest(), pre, streamed, get_input_ops(trace.records[index]))
    assert set(reopened.outputs) == get_input_ops(trace.records[index])
    full, opened = open_operands(trace, pre, index), open_operands(reopened, pre, index)
    for a, b in zip(full.arrays, opened.arrays, strict=True):
        assert (a is None and b is None) or np.array_equal(a, b)


def test_reopening_a_trace_the_step_does_not_reproduce_is_refused(game_program, pre, trace):
    forged = dataclasses.replace(trace, root=bytes(32), outputs={})
    with pytest.raises(OpGraphError, match="not deterministic"):
        reopen_outputs(game_program, Honest(), pre, forged, frozenset({1}))


def test_uninitialized_memory_does_not_reach_the_trace(minimal_dataset):
    """A step that allocates with ``empty_like`` (dropout and a convolution in reproducible mode)
    records the same trace twice, and the referee reproduces that operator: its output is given
    torch's deterministic fill (NaN) instead of the allocator's leftovers."""
    from verification.spec import spec_from_dict

    spec = spec_from_dict({"preset": "minimal", "mode": "reproducible", "model": "tests.programs.conv_regressor:model",
                           "loss": "tests.programs.conv_regressor:loss", "optimizer": "adam", "lr": 0.01})
    program = load_program(spec, minimal_dataset[0])
    pre = program.run(program.init_state(), Step(2))
    first, again = (record_step(program, Honest(), pre, spec.hashing) for _ in range(2))
    assert first.root == again.root
    allocations = [r for r in first.records if r.op.startswith(("aten.empty", "aten.new_empty"))]
    assert allocations
    for record in allocations:
        ruling = rule_on_output(program, Step(3), pre.root(spec.hashing), agreed_digest(first, record.index),
                                record, open_operands(first, pre, record.index))
        assert ruling.winner == "solver", record.op


text = st.text(max_size=8)  # any unicode: quotes, backslashes, control and non-ASCII characters
ints = st.integers(-2**70, 2**70)
input_refs = st.builds(InputRef, st.sampled_from(["state", "batch", "op", "const"]) | text, text, ints, ints,
                       st.tuples(ints, ints) | st.just(()), st.tuples(ints) | st.just(()))
records = st.builds(OpRecord, ints, text, text, st.lists(input_refs, max_size=3).map(tuple),
                    st.lists(text, max_size=3).map(tuple))


@settings(max_examples=200, deadline=None)
@given(records, st.sampled_from(["typed", "list shape", "bool index", "list outputs"]))
def test_every_records_encoding_is_the_canonical_json_of_its_fields(record, variant):
    """The typed writer (``encode_typed_record``) and the general encoder give the same bytes;
    a field of another type (a list, a bool) takes the general encoder."""
    import json

    from verification.execution.opgraph import encode_record, encode_typed_record

    if variant == "list shape" and record.inputs:
        record = dataclasses.replace(record, inputs=(dataclasses.replace(record.inputs[0], shape=[1, 2]),))
    elif variant == "bool index":
        record = dataclasses.replace(record, index=True)
    elif variant == "list outputs":
        record = dataclasses.replace(record, outputs=list(record.outputs))
    expected = json.dumps(dataclasses.asdict(record), sort_keys=True, separators=(",", ":")).encode()
    assert encode_record(record) == expected
    assert (encode_typed_record(record) is None) == (variant != "typed" and (variant != "list shape" or bool(record.inputs)))


@pytest.mark.parametrize("array", [np.zeros((2, 3), "<f4"), np.int64(5), np.zeros(0, ">f8"), np.ones((1, 0, 4), bool)])
def test_an_output_hash_header_is_the_canonical_json_of_dtype_and_shape(array):
    from proofs.encoding import array_bytes, canonical_array
    from proofs.hashing import hash_parts
    from verification.execution.opgraph import canonical_json

    canonical = canonical_array("operator output", array)
    header = canonical_json([canonical.dtype.str, list(canonical.shape)]).encode()
    assert hash_array(array, SHA256) == hash_parts(DOMAIN_OPS, b"tensor", header, array_bytes(canonical)).hex()


def test_a_records_encoding_is_the_canonical_json_of_all_its_fields(trace):
    """``encode_record`` builds the record's dict by hand (``asdict`` deep-copies, and cost the
    referee most of a ruling); it must stay the canonical JSON of every field, fields added later
    included, or op digests would change."""
    import json

    from verification.execution.opgraph import encode_record

    for record in trace.records:
        expected = json.dumps(dataclasses.asdict(record), sort_keys=True, separators=(",", ":"))
        assert encode_record(record) == expected.encode()
