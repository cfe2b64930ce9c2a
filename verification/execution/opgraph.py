"""The operator graph of one training step: what level 3 of the dispute game bisects.

While a party re-executes the single disputed step ``S_{t-1} -> S_t``, a ``TorchDispatchMode``
records every aten operator that ``Program.step`` runs — forward, autograd backward and the
optimizer update, in execution order — so that the referee can re-execute *one* operator instead
of the step (Verde, Arun et al. 2025 §4; opML's operator-level dispute).

Terms
-----
operator record
    ``(index, op, args, inputs, outputs)``: the operator's position, its overload name
    (``aten.addmm.default``), its canonical non-tensor arguments (JSON; a tensor argument is a
    placeholder ``{"in": n}``), one *input ref* per tensor argument, and the hash of each output
    (``hash_output``). The last record of a step is the pseudo-operator ``pinpoint.commit_state``:
    its inputs are the tensors of the post-state and its output is the post-state root, which
    binds the operator trace to the state root the party claimed at level 2.
input ref
    Where a tensor argument comes from: ``state`` (a tensor of the agreed pre-state, by name —
    checkable against the pre-state root with ``proofs.encoding.verify_tensor``), ``batch``
    (``x``/``y`` of the step's batch — recomputable from the dataset root and the step), ``op``
    (output ``pos`` of the earlier record ``op``), or ``const`` (none of these: a tensor made
    from Python data, such as a lookup table, named by its content hash — the party opens it and
    the referee checks it against that hash). A ref also carries the argument's shape and
    strides, so that the referee hands the kernel the same memory layout (a transposed view
    reaches BLAS with the same transpose flag). A state changed outside the step's operators
    reaches ``commit_state`` as a ``const`` where the canonical schedule has an ``op``.
structure
    A record without its output hashes and layouts: ``(op, args, input refs)``. The *canonical
    schedule* of a step is the list of structures that ``Program.step`` produces. No branch of the
    step depends on a tensor's value, so the schedule is a function of the job spec, the shapes of
    the state and batch, and the program's constants only: the referee derives it by running the
    step on fake tensors (``FakeTensorMode``: every operator runs its meta kernel, i.e. shape
    inference, and no arithmetic — zero FLOPs), while constants made from Python data stay real
    and are hashed as in a real run. The one operator that reads a value,
    ``_local_scalar_dense`` (the loss for the log), returns a placeholder there; nothing after it
    depends on it. Honest parties on a device whose kernels decompose differently from the meta
    kernels would record another schedule; ``exact`` mode already assumes one environment
    (docs/design.md §3).
op digest chain
    ``h_{-1} = H(DOMAIN_OPS, "genesis", pre-state root, t)`` and ``h_i = H(DOMAIN_OPS, "op",
    h_{i-1}, record_i)``. A party commits to the Merkle root (``DOMAIN_OPS``) over ``h_0 … h_{n-1}``.
    Each digest covers every earlier record, so two parties that agree on ``h_{i-1}`` agree on all
    records before ``i`` (collision resistance): bisection over digests finds the *first*
    operator whose inputs both parties agree on but whose record they do not. A Merkle root over
    bare per-operator output hashes would not — agreement at one index says nothing about the
    earlier operators that feed it.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten

from proofs.encoding import array_bytes, canonical_array, tensor_proof
from proofs.hashing import DOMAIN_OPS, Hashing, hash_parts
from proofs.merkle import MerkleProof, hash_leaf, merkle_proof, merkle_root
from proofs.types import Root, Step
from verification.execution.program import (
    Batch,
    Program,
    RealScalars,
    advance_fake,
    fake_batch,
    fake_state,
)
from verification.execution.repro import products  # noqa: F401 - registers pinpoint::fixed_mm, which resolve_operator names
from verification.execution.state import RNG_KEY, State

COMMIT_OP = "pinpoint.commit_state"
READ_SCALAR_OP = torch.ops.aten._local_scalar_dense.default


class OpGraphError(ValueError):
    """An operator cannot be recorded or rebuilt (names the operator and the value)."""


class InputKind(StrEnum):
    """Where an input ref's tensor comes from (the module docstring): a ``str``, as records hold it."""

    STATE = "state"  # a tensor of the agreed pre-state, by name
    BATCH = "batch"  # x or y of the step's batch
    OP = "op"  # an output of an earlier record
    CONST = "const"  # a tensor made from Python data, by content hash


@dataclass(frozen=True)
class InputRef:
    kind: InputKind
    name: str = ""  # state tensor name, "x"/"y", or a constant's content hash
    op: int = -1
    pos: int = -1
    shape: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()

    def source(self) -> tuple[InputKind, str, int, int]:
        return self.kind, self.name, self.op, self.pos


@dataclass(frozen=True)
class OpRecord:
    index: int
    op: str
    args: str  # canonical JSON {"args": [...], "kwargs": {...}}
    inputs: tuple[InputRef, ...]
    outputs: tuple[str, ...]  # hex hash of each output leaf


@dataclass(frozen=True)
class OpsCommitment:
    root: Root
    count: int


@dataclass(frozen=True)
class Operands:
    """An opening of one record's inputs: an array per input ref (``None`` for batch refs), a
    tensor proof per ``state`` ref, and the records ``segment`` that chain from
    ``segment_start`` to the agreed digest before the record (they carry the agreed hashes of the
    ``op`` inputs)."""

    arrays: tuple[np.ndarray | None, ...]
    proofs: tuple[MerkleProof | None, ...]
    segment_start: Root
    segment: tuple[OpRecord, ...]


# -- canonical encoding and hashing -------------------------------------------------------------
CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))  # built once: a hot path


json_string = json.encoder.encode_basestring_ascii  # how CANONICAL_JSON writes a str (ensure_ascii)


def canonical_json(value: Any) -> str:
    return CANONICAL_JSON.encode(value)


def encode_argument(value: Any, on_tensor: Callable[[torch.Tensor], int]) -> Any:
    """JSON form of one operator argument; tensors become ``{"in": n}`` via ``on_tensor``."""
    if isinstance(value, torch.Tensor):
        return {"in": on_tensor(value)}
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return {"float": value.hex()}
    if isinstance(value, list | tuple):
        return [encode_argument(v, on_tensor) for v in value]
    if isinstance(value, torch.dtype | torch.layout | torch.memory_format):
        return {"torch": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"device": "local"}  # where a party runs is not part of the program
    raise OpGraphError(f"operator argument {value!r} of type {type(value).__name__} has no canonical form")


def decode_argument(value: Any, inputs: list[torch.Tensor], device: torch.device) -> Any:
    """Inverse of ``encode_argument`` on the referee's side (tensors from ``inputs``)."""
    if isinstance(value, list):
        return [decode_argument(v, inputs, device) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise OpGraphError(f"operator argument {value!r} is not a canonical encoding")
    (key, item), = value.items()
    if key == "in" and isinstance(item, int) and 0 <= item < len(inputs):
        return inputs[item]
    if key == "float" and isinstance(item, str):
        return float.fromhex(item)
    if key == "device":
        return device
    constant = getattr(torch, item, None) if key == "torch" and isinstance(item, str) else None
    if isinstance(constant, torch.dtype | torch.layout | torch.memory_format):
        return constant
    raise OpGraphError(f"operator argument {value!r} is not a canonical encoding")


def host_array(tensor: torch.Tensor) -> np.ndarray:
    """A C-ordered host copy of a tensor (never shares memory with it)."""
    return np.array(tensor.detach().cpu().numpy(), order="C", copy=True)


def hash_array(array: np.ndarray, hashing: Hashing) -> str:
    """Hash of one operator output: dtype, shape and canonical bytes."""
    array = canonical_array("operator output", array)
    header = f'[{json_string(array.dtype.str)},[{",".join(map(str, array.shape))}]]'.encode()  # canonical_json's
    return hash_parts(DOMAIN_OPS, b"tensor", header, array_bytes(array), hashing=hashing).hex()


def hash_output(value: Any, hashing: Hashing) -> str:
    """Hash of one output leaf: a tensor's contents, or a scalar's canonical JSON."""
    if isinstance(value, torch.Tensor):
        return hash_array(host_array(value), hashing)
    literal = canonical_json(encode_argument(value, lambda t: -1)).encode()
    return hash_parts(DOMAIN_OPS, b"value", literal, hashing=hashing).hex()


def encode_record(record: OpRecord) -> bytes:
    """Canonical JSON of a record: ``dataclasses.asdict``'s value, built field by field (``asdict``
    deep-copies every value, which cost the referee most of a ruling's time); for a record of the
    declared field types it is written directly (``encode_typed_record``), the same bytes."""
    typed = encode_typed_record(record)
    if typed is not None:
        return typed
    return canonical_json({
        "index": record.index, "op": record.op, "args": record.args, "outputs": record.outputs,
        "inputs": [{"kind": r.kind, "name": r.name, "op": r.op, "pos": r.pos, "shape": r.shape,
                    "stride": r.stride} for r in record.inputs],
    }).encode()


def encode_typed_record(record: OpRecord) -> bytes | None:
    """``encode_record``'s bytes written without the JSON encoder's walk over a dict (the
    referee re-encodes every record of an opened chain segment), or None when a field is not of
    its declared type (exactly ``int``, ``str``, tuples of those), for the general encoder. Keys
    in sorted order, no spaces, strings escaped to ASCII by ``json``'s own function: what
    ``canonical_json`` writes."""
    if type(record.index) is not int or type(record.op) is not str or type(record.args) is not str \
            or type(record.outputs) is not tuple or not all(type(h) is str for h in record.outputs):
        return None
    inputs = []
    for r in record.inputs:
        if type(r) is not InputRef or type(r.kind) not in (InputKind, str) or type(r.name) is not str or type(r.op) is not int \
                or type(r.pos) is not int or type(r.shape) is not tuple or type(r.stride) is not tuple \
                or not all(type(d) is int for d in r.shape + r.stride):
            return None
        inputs.append(f'{{"kind":{json_string(r.kind)},"name":{json_string(r.name)},"op":{r.op},"pos":{r.pos},'
                      f'"shape":[{",".join(map(str, r.shape))}],"stride":[{",".join(map(str, r.stride))}]}}')
    return (f'{{"args":{json_string(record.args)},"index":{record.index},"inputs":[{",".join(inputs)}],'
            f'"op":{json_string(record.op)},"outputs":[{",".join(map(json_string, record.outputs))}]}}').encode()


def compute_genesis(pre_root: Root, step: Step, hashing: Hashing) -> Root:
    """``h_{-1}``: the digest both parties start from (the agreed pre-state root and the step)."""
    return hash_parts(DOMAIN_OPS, b"genesis", pre_root, int(step).to_bytes(8, "big"), hashing=hashing)


def compute_op_digest(previous: Root, record: OpRecord, hashing: Hashing) -> Root:
    """``h_i = H(h_{i-1}, record_i)``."""
    return hash_parts(DOMAIN_OPS, b"op", previous, encode_record(record), hashing=hashing)


def compute_chain_end(start: Root, records: tuple[OpRecord, ...], hashing: Hashing) -> Root:
    digest = start
    for record in records:
        digest = compute_op_digest(digest, record, hashing)
    return digest


def get_structure(record: OpRecord | None) -> tuple | None:
    """What the canonical schedule fixes about a record: op, arguments, input sources."""
    if record is None:
        return None
    return record.op, record.args, tuple(ref.source() for ref in record.inputs)


# -- recording ------------------------------------------------------------------------------------
def is_computation(func: torch._ops.OpOverload) -> bool:
    """Whether an operator computes: ``prim`` metadata queries (a fake tensor's device) and the
    ``profiler`` markers that torch.optim's ``step`` emits do not, and are not recorded."""
    return func.namespace not in ("prim", "profiler")


# Operators whose output is uninitialized memory: its bits are whatever the allocator left there.
UNINITIALIZED_OPS = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"})


def fill_uninitialized(func: torch._ops.OpOverload, out: Any) -> None:
    """Give an uninitialized output defined contents, in place, as torch's deterministic mode does
    (``torch.utils.deterministic.fill_uninitialized_memory``): NaN for floating point, the largest
    value for integers. Recorded and re-executed, such an output would otherwise hash to whatever
    the allocator left, and two runs of one step would differ (a correct program overwrites it)."""
    if func._opname not in UNINITIALIZED_OPS:
        return
    with _disable_current_modes():
        for leaf in tree_flatten(out)[0]:
            if isinstance(leaf, torch.Tensor) and not isinstance(leaf, FakeTensor) and leaf.device.type != "meta":
                if leaf.is_floating_point() or leaf.is_complex():
                    leaf.fill_(float("nan"))
                elif leaf.dtype == torch.bool:
                    leaf.fill_(True)
                else:
                    leaf.fill_(torch.iinfo(leaf.dtype).max)


def get_view_key(tensor: torch.Tensor) -> tuple:
    """What makes two tensor objects the same value: storage, offset, shape, strides, dtype."""
    return (tensor.untyped_storage()._cdata, tensor.storage_offset(), tuple(tensor.shape),
            tuple(tensor.stride()), tensor.dtype)


class OpRecorder(TorchDispatchMode):
    """Records every aten operator run inside the ``with`` block as an ``OpRecord``.

    Tensors are traced by identity: registered pre-state and batch tensors, then every output of a
    recorded operator. A tensor that reaches an operator as a new Python object over the same
    memory (autograd unpacks a custom function's saved output that way, without an operator) is
    found by its *view key* — storage, offset, shape, strides, dtype — which works on fake
    tensors too. The recorder holds tensors by weak reference only: keeping a step's tensors alive
    changes which operators autograd runs (an unpacked saved output costs an extra ``detach`` when
    the original is still referenced), and the recording must not change the step. With
    ``schedule_only`` (on fake tensors) the recorder derives structure only: no output hashes.
    """

    def __init__(self, hashing: Hashing, schedule_only: bool = False, keep: frozenset[int] | None = None):
        super().__init__()
        self.hashing = hashing
        self.schedule_only = schedule_only
        self.keep = keep  # which records' outputs to keep (None: all); the rest are hashed and dropped
        self.constants: dict[str, np.ndarray] = {}
        self.records: list[OpRecord] = []
        self.outputs: dict[int, tuple[np.ndarray | None, ...]] = {}
        self._by_id: dict[int, tuple[weakref.ref, tuple[InputKind, str, int, int]]] = {}
        self._by_view: dict[tuple, tuple[weakref.ref, tuple[InputKind, str, int, int]]] = {}

    def register(self, tensor: torch.Tensor, kind: InputKind, name: str = "", op: int = -1, pos: int = -1) -> None:
        self._by_id[id(tensor)] = (weakref.ref(tensor), (kind, name, op, pos))
        self._by_view[get_view_key(tensor)] = (weakref.ref(tensor.untyped_storage()), (kind, name, op, pos))

    def register_state(self, state: State) -> None:
        for name, tensor in state.tensors.items():
            self.register(tensor, InputKind.STATE, name)

    def register_batch(self, batch: Batch) -> None:
        self.register(batch.x, InputKind.BATCH, "x")
        self.register(batch.y, InputKind.BATCH, "y")

    def get_view_source(self, tensor: torch.Tensor) -> tuple[InputKind, str, int, int] | None:
        """The source registered for ``tensor``'s memory, if that memory is the registered one: a
        storage address is reused once freed, and the allocator's reuse differs between two runs
        of a step, so an entry counts only while its storage lives (a storage's Python object
        lives exactly as long as the storage, so a weak reference to it tells)."""
        entry = self._by_view.get(get_view_key(tensor))
        return entry[1] if entry is not None and entry[0]() is tensor.untyped_storage() else None

    def get_ref(self, tensor: torch.Tensor) -> InputRef:
        entry = self._by_id.get(id(tensor))
        # An id is the tensor's only while the registered tensor is alive (ids are reused).
        source = entry[1] if entry is not None and entry[0]() is tensor else self.get_view_source(tensor)
        if source is None:
            source = (InputKind.CONST, self.add_constant(tensor), -1, -1)
        return InputRef(*source, tuple(tensor.shape), tuple(tensor.stride()))

    def add_constant(self, tensor: torch.Tensor) -> str:
        """Content hash of an untraced tensor (kept, so the party can open it); ``"fake"`` for a
        fake tensor, whose content does not exist."""
        if isinstance(tensor, FakeTensor) or tensor.device.type == "meta":
            return "fake"
        array = host_array(tensor)
        name = hash_array(array, self.hashing)
        self.constants[name] = array
        return name

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not is_computation(func):
            return func(*args, **kwargs)
        # Schedule-only replay: the loss read for the log is the one value-dependent operator.
        reads_fake = func is READ_SCALAR_OP and isinstance(args[0], FakeTensor)
        out = 0.0 if self.schedule_only and reads_fake else func(*args, **kwargs)
        fill_uninitialized(func, out)
        with _disable_current_modes():
            self._append(str(func), args, kwargs, out)
        return out

    def _append(self, name: str, args: tuple, kwargs: dict, out: Any) -> None:
        inputs: list[InputRef] = []

        def on_tensor(tensor: torch.Tensor) -> int:
            inputs.append(self.get_ref(tensor))
            return len(inputs) - 1

        encoded = canonical_json({"args": encode_argument(list(args), on_tensor),
                                  "kwargs": {k: encode_argument(v, on_tensor) for k, v in kwargs.items()}})
        leaves = tree_flatten(out)[0]
        arrays = tuple(host_array(leaf) if isinstance(leaf, torch.Tensor) and not self.schedule_only else None
                       for leaf in leaves)
        hashes = () if self.schedule_only else tuple(
            hash_array(a, self.hashing) if a is not None else hash_output(leaf, self.hashing)
            for a, leaf in zip(arrays, leaves, strict=True))
        index = len(self.records)
        self.records.append(OpRecord(index, name, encoded, tuple(inputs), hashes))
        if self.keep is None or index in self.keep:
            self.outputs[index] = arrays
        for pos, leaf in enumerate(leaves):
            if isinstance(leaf, torch.Tensor):
                self.register(leaf, InputKind.OP, op=index, pos=pos)

    def append_commit(self, post: State, pre: State) -> None:
        """The closing ``pinpoint.commit_state`` record: post-state tensors in, state root out."""
        names = sorted(post.tensors)
        inputs = [self.get_ref(post.tensors[n]) for n in names]
        # The RNG key is carried over from the pre-state; any other key is a constant of the party's.
        rng_source = "" if post.rng == pre.rng else hash_output(post.rng, self.hashing)
        inputs.append(InputRef(InputKind.STATE, RNG_KEY) if not rng_source else InputRef(InputKind.CONST, rng_source))
        args = canonical_json({"names": names, "step": int(post.step)})
        outputs = () if self.schedule_only else (post.root(self.hashing).hex(),)
        self.records.append(OpRecord(len(self.records), COMMIT_OP, args, tuple(inputs), outputs))


class RecordingProgram:
    """A ``Program`` whose ``step`` runs under an ``OpRecorder``; every other attribute is the
    wrapped program's. A strategy handed this proxy is recorded exactly where it calls ``step``."""

    def __init__(self, program: Program, recorder: OpRecorder):
        self._program = program
        self._recorder = recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._program, name)

    def step(self, state: State, batch: Batch, lr: float | None = None):
        self._recorder.register_batch(batch)
        with self._recorder:
            return self._program.step(state, batch, lr)


@dataclass(frozen=True)
class OpTrace:
    """One party's recorded step: records, digest chain, Merkle leaves and the outputs it kept
    (``outputs[i]``: the host arrays of record ``i``; a streaming recording keeps none and reopens
    the ones an opening needs by running the step again, ``reopen_outputs``)."""

    step: Step
    genesis: Root
    records: tuple[OpRecord, ...]
    digests: tuple[Root, ...]
    leaves: tuple[bytes, ...]
    root: Root
    outputs: dict[int, tuple[np.ndarray | None, ...]]
    constants: dict[str, np.ndarray]
    hashing: Hashing

    def commitment(self) -> OpsCommitment:
        return OpsCommitment(self.root, len(self.records))

    def digest_proof(self, index: int) -> tuple[Root, MerkleProof]:
        return self.digests[index], merkle_proof(list(self.leaves), index, DOMAIN_OPS, self.hashing)


def build_trace(records: list[OpRecord], outputs: dict[int, tuple], constants: dict[str, np.ndarray],
                pre_root: Root, step: Step, hashing: Hashing) -> OpTrace:
    genesis = compute_genesis(pre_root, step, hashing)
    digests, digest = [], genesis
    for record in records:
        digest = compute_op_digest(digest, record, hashing)
        digests.append(digest)
    leaves = tuple(hash_leaf(d, DOMAIN_OPS, hashing) for d in digests)
    return OpTrace(step, genesis, tuple(records), tuple(digests), leaves,
                   merkle_root(list(leaves), DOMAIN_OPS, hashing), dict(outputs), dict(constants), hashing)


def record_step(program: Program, strategy: Any, pre: State, hashing: Hashing,
                keep: frozenset[int] | None = None) -> OpTrace:
    """Run ``strategy``'s version of step ``pre.step + 1`` and record its operators.

    ``keep``: the records whose outputs are kept in memory (``None``: all). With ``frozenset()``
    the recording streams: each output is hashed as it is produced and dropped, so a party's
    memory is one step's, not one step's plus a copy of every intermediate tensor.
    """
    gc.collect()  # no garbage of earlier steps alive by chance: tensor lifetimes shape the op trace
    recorder = OpRecorder(hashing, keep=keep)
    recorder.register_state(pre)
    out = strategy.run_step(RecordingProgram(program, recorder), pre)
    recorder.append_commit(out.state, pre)
    return build_trace(recorder.records, recorder.outputs, recorder.constants, pre.root(hashing),
                       Step(pre.step + 1), hashing)


def derive_schedule(program: Program, step: Step) -> list[tuple]:
    """The canonical schedule of step ``step``: ``Program.step`` replayed on fake tensors.

    The pre-state is ``S_0`` advanced by honest fake steps to ``S_{step-1}`` when the State has
    scalar (0-d) tensors, which run for real (``RealScalars``: an optimizer's step counter enters
    the arguments of its update); otherwise ``S_0``'s names, shapes and dtypes with step
    ``step - 1``. The batch is the step's own.
    """
    template = program.init_state()
    real = program.batch(step)
    fake = FakeTensorMode(allow_non_fake_inputs=True)
    recorder = OpRecorder(program.spec.hashing, schedule_only=True)
    with fake, RealScalars():
        pre = fake_state(fake, template)
        if any(t.dim() == 0 for t in template.tensors.values()):
            pre = advance_fake(program, fake, pre, Step(step - 1))
        pre = State(Step(step - 1), pre.tensors, pre.rng)
        batch = fake_batch(fake, real)
        recorder.register_state(pre)
        recorder.register_batch(batch)
        with recorder:
            out = program.step(pre, batch)
    recorder.append_commit(out.state, pre)
    return [get_structure(r) for r in recorder.records]


def get_input_ops(record: OpRecord) -> frozenset[int]:
    """The earlier records whose outputs feed ``record``."""
    return frozenset(ref.op for ref in record.inputs if ref.kind == InputKind.OP and 0 <= ref.op < record.index)


def reopen_outputs(program: Program, strategy: Any, pre: State, trace: OpTrace, indices: frozenset[int]) -> OpTrace:
    """``trace`` with the outputs of records ``indices`` kept: the step is run and recorded
    again (it is deterministic), keeping only those. ``OpGraphError`` if the second run does not
    reproduce the committed trace."""
    again = record_step(program, strategy, pre, trace.hashing, keep=indices)
    if again.root != trace.root:
        raise OpGraphError(f"re-running step {trace.step} to open operators {sorted(indices)} gave op root "
                           f"{again.root.hex()}, committed {trace.root.hex()}: the step is not deterministic")
    return dataclasses.replace(trace, outputs={**trace.outputs, **again.outputs})


def open_operands(trace: OpTrace, pre: State, index: int) -> Operands:
    """Everything the referee needs to check the inputs of record ``index`` of ``trace`` (whose
    input records' outputs must be kept, ``reopen_outputs``)."""
    record = trace.records[index]
    missing = sorted(get_input_ops(record) - set(trace.outputs))
    if missing:
        raise OpGraphError(f"the outputs of records {missing} are not kept: reopen them first")
    arrays = pre.to_arrays()
    opened, proofs = [], []
    for ref in record.inputs:
        if ref.kind == InputKind.STATE and ref.name in arrays:
            opened.append(arrays[ref.name])
            proofs.append(tensor_proof(arrays, ref.name, trace.hashing))
        elif ref.kind == InputKind.OP and 0 <= ref.op < index:
            opened.append(trace.outputs[ref.op][ref.pos])
            proofs.append(None)
        elif ref.kind == InputKind.CONST and ref.name in trace.constants:
            opened.append(trace.constants[ref.name])
            proofs.append(None)
        else:
            opened.append(None)
            proofs.append(None)
    first = min((ref.op for ref in record.inputs if ref.kind == InputKind.OP and 0 <= ref.op < index), default=index)
    start = trace.genesis if first == 0 else trace.digests[first - 1]
    return Operands(tuple(opened), tuple(proofs), start, trace.records[first:index])


# -- the referee's side: rebuilding and running one operator -------------------------------------
OPERATOR_NAMESPACES = ("aten", "pinpoint")  # torch's operators and reproducible mode's own (products)


def resolve_operator(name: str) -> torch._ops.OpOverload:
    """The overload named ``<namespace>.<op>.<overload>`` of torch (``aten``) or of reproducible
    mode (``pinpoint.fixed_mm.default``); no other namespace is callable."""
    parts = name.split(".")
    if len(parts) < 3 or parts[0] not in OPERATOR_NAMESPACES:
        raise OpGraphError(f"operator {name!r} is not an overload of {' or '.join(OPERATOR_NAMESPACES)}")
    packet = getattr(getattr(torch.ops, parts[0]), ".".join(parts[1:-1]), None)
    overload = getattr(packet, parts[-1], None) if packet is not None else None
    if not isinstance(overload, torch._ops.OpOverload):
        raise OpGraphError(f"operator {name!r} does not exist in this torch")
    return overload


def materialize(array: np.ndarray, ref: InputRef, device: torch.device) -> torch.Tensor:
    """An opened input on ``device`` with the shape and strides it had when recorded (a dense
    copy when those strides overlap, e.g. a broadcast view)."""
    if tuple(array.shape) != ref.shape:
        raise OpGraphError(f"input of shape {tuple(array.shape)} opened for a ref of shape {ref.shape}")
    source = torch.from_numpy(np.array(array, copy=True)).to(device)
    try:
        tensor = torch.empty_strided(ref.shape, ref.stride, dtype=source.dtype, device=device)
        return tensor.copy_(source)
    except RuntimeError:
        return source


def call_operator(record: OpRecord, inputs: list[torch.Tensor], device: torch.device) -> Any:
    """Run one recorded aten operator on rebuilt inputs: its kernel only, below autograd (which
    would add an operator of its own, e.g. the ``detach`` after a change of dtype)."""
    payload = json.loads(record.args)
    args = decode_argument(payload["args"], inputs, device)
    kwargs = {k: decode_argument(v, inputs, device) for k, v in payload["kwargs"].items()}
    operator = resolve_operator(record.op)
    with torch._C._AutoDispatchBelowADInplaceOrView():
        out = operator(*args, **kwargs)
    fill_uninitialized(operator, out)
    return out


def hash_outputs(out: Any, hashing: Hashing) -> tuple[str, ...]:
    return tuple(hash_output(leaf, hashing) for leaf in tree_flatten(out)[0])
