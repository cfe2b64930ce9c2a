"""The referee: re-executes the smallest disputed piece of work and rules.

The referee trusts nothing but the job spec, the committed dataset and values that both parties
agreed on. It receives an *opened* input (a state, or an operator's input tensors), checks it
against the agreed root, recomputes, and compares the result with both parties' claims (Verde,
Arun et al. 2025 §3; Canetti, Riva & Rothblum 2011 refereed delegation).

Ruling rule: the solver's claim is the one under test. If the referee's result equals the
solver's claim, the solver wins; otherwise the challenger wins (its own claim is recorded; a
challenger whose claim is also wrong still wins against a wrong solver, since the dispute is about
the solver's commitment).

Operator level (level 3 of the game, ``verification.execution.opgraph``): the two parties agree on
the op digest ``h_{i-1}`` and disagree on record ``i``.

* *structure ruling* — the records differ in operator, arguments or input sources: the referee
  derives the canonical schedule of the step on fake tensors (zero FLOPs) and the party whose
  record is not the canonical record ``i`` (or that has a record where the step has ended, or
  none where it goes on) loses. Sound because the schedule depends on shapes and the spec only.
* *output ruling* — the records have the same structure and differ only in output hashes: the
  solver opens the inputs; the referee checks each one (a pre-state tensor against the agreed
  pre-state root; a batch tensor by recomputing the batch from the dataset; an earlier operator's
  output against its hash in a chain of records that must end at the agreed ``h_{i-1}``; a
  constant against the content hash in the record), runs
  that one operator, and compares its output hashes with the solver's. With at least one honest
  party, equal structures are the canonical structure, so no schedule is needed.

``referee_ops`` counts the operators the referee executed on real data: one for an output ruling
(``OpCounter`` confirms it for an aten operator; ``pinpoint.commit_state`` is one state-root
computation), none for a structure ruling, and every operator of the step when level 3 is off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from proofs.encoding import state_root, verify_tensor
from proofs.hashing import Hashing
from proofs.types import Party, Root, Step
from verification.execution.opgraph import (
    COMMIT_OP,
    InputKind,
    Operands,
    OpGraphError,
    OpRecord,
    call_operator,
    compute_chain_end,
    derive_schedule,
    get_structure,
    hash_array,
    hash_outputs,
    is_computation,
    materialize,
)
from verification.execution.program import Program, honest_step
from verification.execution.state import RNG_KEY, STEP_KEY, State


class RefereeError(ValueError):
    """The referee was handed input that does not match what the parties agreed on."""


class RulingKind(StrEnum):
    """What an operator ruling is on (the module docstring): a ``str``, as the ruling message holds it."""

    STRUCTURE = "structure"  # the records differ in operator, arguments or input sources
    OUTPUT = "output"  # the records differ only in output hashes


class OpCounter(TorchDispatchMode):
    """Counts the aten operators executed inside the ``with`` block."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += is_computation(func)
        return func(*args, **(kwargs or {}))


@dataclass(frozen=True)
class StepRuling:
    step: Step
    referee_root: Root
    solver_root: Root
    challenger_root: Root
    winner: Party  # the solver or the challenger
    referee_ops: int


def compute_winner(referee_root: Root, solver_root: Root) -> Party:
    # Rule: the solver's claim is under test; it wins only if the referee reproduces it.
    return Party.SOLVER if referee_root == solver_root else Party.CHALLENGER


def rule_on_step(program: Program, opened: State, agreed_root: Root, step: Step,
                 solver_root: Root, challenger_root: Root) -> StepRuling:
    """Recompute step ``step`` from the opened ``S_{step-1}`` and rule."""
    hashing = program.spec.hashing
    # Rule: the opened pre-state must hash to the root both parties agreed on.
    if opened.step != step - 1 or opened.root(hashing) != agreed_root:
        raise RefereeError(f"opened state for step {step - 1} does not match agreed root {agreed_root.hex()}")
    with OpCounter() as counter:
        result = honest_step(program, opened).state
    referee_root = result.root(hashing)
    return StepRuling(step, referee_root, solver_root, challenger_root,
                      compute_winner(referee_root, solver_root), counter.count)


@dataclass(frozen=True)
class OpRuling:
    step: Step
    index: int
    operator: str  # the operator at the disputed index (the canonical one in a structure ruling)
    kind: RulingKind
    winner: Party  # the solver or the challenger
    referee_ops: int  # operators executed on real data
    schedule_ops: int  # operators replayed on fake tensors (zero FLOPs) to derive the schedule
    referee_outputs: tuple[str, ...] = ()


def rule_on_structure(program: Program, step: Step, index: int, solver_record: OpRecord | None,
                      challenger_record: OpRecord | None) -> OpRuling:
    """Rule on records that differ in structure, against the canonical schedule of the step."""
    schedule = derive_schedule(program, step)
    canonical = schedule[index] if index < len(schedule) else None
    # Rule: the record at the disputed index must be the canonical schedule's (none past its end).
    winner = Party.SOLVER if get_structure(solver_record) == canonical else Party.CHALLENGER
    claimed = solver_record or challenger_record
    operator = canonical[0] if canonical is not None else claimed.op
    return OpRuling(step, index, operator, RulingKind.STRUCTURE, winner, 0, len(schedule))


def get_agreed_outputs(operands: Operands, index: int, agreed_digest: Root, hashing: Hashing) -> dict[int, tuple[str, ...]]:
    """Output hashes of the records in the opened chain segment, which must end at ``h_{index-1}``."""
    if not operands.segment:
        return {}
    first = index - len(operands.segment)
    # Rule: the segment is the consecutive records before the disputed one and chains to the agreed digest.
    consecutive = [r.index for r in operands.segment] == list(range(first, index))
    if not consecutive or compute_chain_end(operands.segment_start, operands.segment, hashing) != agreed_digest:
        raise RefereeError(f"opened records {first}..{index - 1} do not chain to the agreed digest {agreed_digest.hex()}")
    return {r.index: r.outputs for r in operands.segment}


def check_operand(program: Program, pre_root: Root, agreed: dict[int, tuple[str, ...]], ref, array, proof) -> None:
    hashing = program.spec.hashing
    if array is None:
        raise RefereeError(f"operand {ref.source()} was not opened")
    if ref.kind == InputKind.STATE:
        # Rule: a pre-state input must be that tensor of the agreed pre-state root.
        if proof is None or not verify_tensor(pre_root, ref.name, array, proof, hashing):
            raise RefereeError(f"opened {ref.name!r} is not in the agreed pre-state {pre_root.hex()}")
    elif ref.kind == InputKind.OP:
        # Rule: an earlier operator's output must hash to the value both parties agreed on.
        if ref.op not in agreed or not 0 <= ref.pos < len(agreed[ref.op]) or \
                hash_array(array, hashing) != agreed[ref.op][ref.pos]:
            raise RefereeError(f"opened output {ref.pos} of operator #{ref.op} does not match its agreed hash")
    elif ref.kind == InputKind.CONST:
        # Rule: a constant must hash to the content named in the record both parties committed to.
        if hash_array(array, hashing) != ref.name:
            raise RefereeError(f"opened constant does not hash to {ref.name}")
    else:
        raise RefereeError(f"operand {ref.source()} is not derivable from agreed data")


def get_operands(program: Program, step: Step, pre_root: Root, agreed_digest: Root, record: OpRecord,
                 operands: Operands) -> list:
    """The record's inputs as host arrays (state, op) or device tensors (batch), each checked."""
    hashing = program.spec.hashing
    if not len(operands.arrays) == len(operands.proofs) == len(record.inputs):
        raise RefereeError(f"{len(operands.arrays)} operands opened for {len(record.inputs)} inputs")
    agreed = get_agreed_outputs(operands, record.index, agreed_digest, hashing)
    batch = program.batch(step) if any(ref.kind == InputKind.BATCH for ref in record.inputs) else None
    values = []
    for ref, array, proof in zip(record.inputs, operands.arrays, operands.proofs, strict=True):
        if ref.kind == InputKind.BATCH:
            # Rule: batch inputs are the referee's own, recomputed from the dataset root and the step.
            values.append(getattr(batch, ref.name) if ref.name in ("x", "y") else None)
            if values[-1] is None:
                raise RefereeError(f"batch input {ref.name!r} does not exist")
            continue
        check_operand(program, pre_root, agreed, ref, array, proof)
        values.append(array)
    return values


def compute_commit_root(record: OpRecord, values: list, hashing: Hashing) -> str:
    """``pinpoint.commit_state``: the state root of the opened post-state tensors."""
    args = json.loads(record.args)
    arrays = {name: np.asarray(v) for name, v in zip(args["names"], values, strict=False)}
    arrays[STEP_KEY] = np.asarray(args["step"], dtype=np.int64)
    arrays[RNG_KEY] = np.asarray(values[-1], dtype=np.uint64)
    return state_root(arrays, hashing).hex()


def rule_on_output(program: Program, step: Step, pre_root: Root, agreed_digest: Root, record: OpRecord,
                   operands: Operands) -> OpRuling:
    """Recompute the one disputed operator from checked inputs and rule on the solver's outputs."""
    hashing, device = program.spec.hashing, program.device
    values = get_operands(program, step, pre_root, agreed_digest, record, operands)
    try:
        if record.op == COMMIT_OP:
            outputs, ops = (compute_commit_root(record, values, hashing),), 1
        else:
            inputs = [v if isinstance(v, torch.Tensor) else materialize(v, ref, device)
                      for v, ref in zip(values, record.inputs, strict=True)]
            with OpCounter() as counter:
                out = call_operator(record, inputs, device)
            outputs, ops = hash_outputs(out, hashing), counter.count
    except (OpGraphError, RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise RefereeError(f"operator #{record.index} {record.op} cannot be recomputed: {exc}") from exc
    return OpRuling(step, record.index, record.op, RulingKind.OUTPUT, compute_winner_on_outputs(outputs, record.outputs),
                    ops, 0, outputs)


def compute_winner_on_outputs(referee_outputs: tuple[str, ...], solver_outputs: tuple[str, ...]) -> Party:
    # Rule: the solver's claim is under test; it wins only if the referee reproduces every output.
    return Party.SOLVER if referee_outputs == solver_outputs else Party.CHALLENGER
