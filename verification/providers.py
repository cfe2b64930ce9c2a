"""The narrow interface through which a party takes part in the dispute game.

Following OffchainLabs' BoLD, the game never touches a party's training backend directly; it asks
a *provider* (docs/design.md §1.6):

``checkpoint_root(index)``
    the party's state root at step ``index·k``, with an inclusion proof against its trace root;
``commit_steps(start, end)``
    recompute ``S_start … S_end`` from the party's own checkpoint and commit to the Merkle root
    (``DOMAIN_STEPS``) of their state roots;
``step_root(step)``
    one of those roots, with its inclusion proof against the step commitment;
``open_state(step)``
    the full state at a step (checked by the receiver against an agreed root; used only when
    level 3 is disabled and the referee re-executes a whole step);
``commit_ops(step)``
    re-execute step ``step`` from the party's ``S_{step-1}`` while recording its operators
    (``verification.execution.opgraph``), each output hashed and dropped as it is produced, and
    commit to the Merkle root of the op digest chain and the number of records;
``op_digest(index)``
    the digest ``h_index`` of that chain, with its inclusion proof against the op commitment;
``open_op(index)``
    the operator record at ``index`` (the receiver checks it chains to the committed digest);
``open_operands(index)``
    the input tensors of that record (the party runs the step once more, keeping only those),
    with proofs against the agreed pre-state root and the chain segment that carries the agreed
    hashes of earlier operators' outputs.

An honest provider and a cheating one are interchangeable: only the answers differ.
``TraceProvider`` is backed by a training run and a strategy; the honest challenger uses the same
class with the ``Honest`` strategy and its own replica run. Whatever it re-executes runs under its
program's torch settings (``Program.settings``), entered per answer.
"""

from __future__ import annotations

from typing import Protocol

from datasets.sharding import DatasetCommitment
from proofs.encoding import trace_proof
from proofs.hashing import DOMAIN_STEPS
from proofs.merkle import MerkleProof, hash_leaf, merkle_proof, merkle_root
from proofs.types import PartyId, Root, Step
from verification.execution.checkpoints import read_checkpoint
from verification.execution.opgraph import (
    Operands,
    OpRecord,
    OpsCommitment,
    OpTrace,
    get_input_ops,
    open_operands,
    record_step,
    reopen_outputs,
)
from verification.execution.program import Program, load_program
from verification.execution.state import State
from verification.solver import TrainingRun, replay, resolve_solver_strategy
from verification.spec import JobSpec, SolverSpec
from verification.strategies import Strategy


class ProviderError(RuntimeError):
    """A provider cannot answer (missing data, a step outside the disputed range)."""


class Provider(Protocol):
    party: PartyId

    def checkpoint_root(self, index: int) -> tuple[Root, MerkleProof]: ...

    def commit_steps(self, start: Step, end: Step) -> Root: ...

    def step_root(self, step: Step) -> tuple[Root, MerkleProof]: ...

    def open_state(self, step: Step) -> State: ...

    def commit_ops(self, step: Step) -> OpsCommitment: ...

    def op_digest(self, index: int) -> tuple[Root, MerkleProof]: ...

    def open_op(self, index: int) -> OpRecord: ...

    def open_operands(self, index: int) -> Operands: ...


class TraceProvider:
    """A provider backed by one training run (checkpoints on disk) and the strategy that made it."""

    def __init__(self, party: PartyId, run: TrainingRun, program: Program, strategy: Strategy):
        self.party = party
        self.run = run
        self.program = program
        self.strategy = strategy
        self._states: dict[int, State] = {}
        self._roots: list[Root] = []
        self._leaves: list[bytes] = []
        self._start = 0
        self._trace: OpTrace | None = None

    def checkpoint_root(self, index: int) -> tuple[Root, MerkleProof]:
        if not 0 <= index < len(self.run.roots):
            raise ProviderError(f"{self.party}: no checkpoint #{index}")
        return self.run.roots[index], trace_proof(list(self.run.roots), index, self.program.spec.hashing)

    def commit_steps(self, start: Step, end: Step) -> Root:
        k = self.run.interval
        if start % k or not 0 <= start < end <= self.run.steps:
            raise ProviderError(f"{self.party}: cannot commit to steps {start}..{end}")
        first = read_checkpoint(self.run.checkpoint_path, start // k, self.program.device)
        with self.program.settings():
            states = [first, *replay(self.program, self.strategy, first, end)]
        self._states = {s.step: s for s in states}
        self._start = start
        hashing = self.program.spec.hashing
        self._roots = [s.root(hashing) for s in states]
        self._leaves = [hash_leaf(r, DOMAIN_STEPS, hashing) for r in self._roots]
        return merkle_root(self._leaves, DOMAIN_STEPS, hashing)

    def step_root(self, step: Step) -> tuple[Root, MerkleProof]:
        position = step - self._start
        if not 0 <= position < len(self._roots):
            raise ProviderError(f"{self.party}: step {step} is outside the committed steps")
        proof = merkle_proof(self._leaves, position, DOMAIN_STEPS, self.program.spec.hashing)
        return self._roots[position], proof

    def open_state(self, step: Step) -> State:
        if step not in self._states:
            raise ProviderError(f"{self.party}: state of step {step} is not held")
        return self._states[step]

    def commit_ops(self, step: Step) -> OpsCommitment:
        if step - 1 not in self._states or step not in self._states:
            raise ProviderError(f"{self.party}: step {step} is outside the committed steps")
        # Streaming: outputs are hashed and dropped; an opening runs the step again (open_operands).
        with self.program.settings():
            self._trace = record_step(self.program, self.strategy, self._states[step - 1],
                                      self.program.spec.hashing, keep=frozenset())
        return self._trace.commitment()

    def get_trace(self) -> OpTrace:
        if self._trace is None:
            raise ProviderError(f"{self.party}: no operator trace committed")
        return self._trace

    def op_digest(self, index: int) -> tuple[Root, MerkleProof]:
        trace = self.get_trace()
        if not 0 <= index < len(trace.records):
            raise ProviderError(f"{self.party}: no operator #{index} in step {trace.step}")
        return trace.digest_proof(index)

    def open_op(self, index: int) -> OpRecord:
        trace = self.get_trace()
        if not 0 <= index < len(trace.records):
            raise ProviderError(f"{self.party}: no operator #{index} in step {trace.step}")
        return trace.records[index]

    def open_operands(self, index: int) -> Operands:
        trace = self.get_trace()
        if not 0 <= index < len(trace.records):
            raise ProviderError(f"{self.party}: no operator #{index} in step {trace.step}")
        pre = self._states[trace.step - 1]
        needed = get_input_ops(trace.records[index])
        if not needed <= set(trace.outputs):
            with self.program.settings():
                self._trace = trace = reopen_outputs(self.program, self.strategy, pre, trace, needed)
        return open_operands(trace, pre, index)


def build_trace_provider(spec: JobSpec, dataset: DatasetCommitment, run: TrainingRun, party: SolverSpec) -> TraceProvider:
    """A party's provider as its own process builds it (``verification.parties.RemoteProvider``):
    its own program from the job and the committed dataset, its own strategy."""
    program = load_program(spec, dataset)
    return TraceProvider(PartyId(party.solver_id), run, program, resolve_solver_strategy(spec, run.job_id, party))
