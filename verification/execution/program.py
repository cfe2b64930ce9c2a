"""The training program: ``init(spec) -> State`` and ``step(State, batch) -> State``.

This is the one code path (docs/design.md §1.3): solvers run it, verifiers re-run it, and the referee
calls it. The program is ordinary PyTorch named by the job spec (``verification.execution.pieces``):
an ``nn.Module``, a ``torch.optim`` optimizer, a learning-rate schedule and a loss. The State holds
the module's parameters (``param/<name>``) and persistent buffers (``buffer/<name>``) and the
optimizer's per-parameter state (``optim/<name>/<key>``: ``momentum_buffer``, ``exp_avg``,
``exp_avg_sq``, ``step``, …), so every step can be replayed from the State alone.

Execution modes (docs/design.md §3):

``exact``
    torch's kernels with a pinned thread count and ``torch.use_deterministic_algorithms``. Two
    honest parties agree only on an identical software/hardware environment.
``reproducible``
    the same program with every aten operator run by ``verification.execution.repro.mode``
    (``reproducible()``): the same bits on every device, thread count and CPU generation.
``tolerance``
    torch's kernels; parties are compared up to a distance threshold (Proof-of-Learning).

A mode's torch settings (thread count, deterministic algorithms, TF32, cuBLAS's workspace) are
process-wide; they are an explicit context, ``execution_settings`` (``Program.settings``), that
whoever executes a program enters and that puts the previous settings back on exit. Building a
``Program`` changes none of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten

from datasets.schedule import batch_indices
from datasets.sharding import DatasetCommitment, load_dataset
from proofs.hashing import DOMAIN_STATE, hash_parts
from proofs.types import Root, Step
from verification.execution.pieces import (
    LOSSES,
    OPTIMIZERS,
    Objective,
    OptimizerTerms,
    ProgramError,
    build_module,
    make_schedule,
    resolve_piece,
    zero_state,
)
from verification.execution.repro.mode import reproducible
from verification.execution.repro.rng import StepRng
from verification.execution.state import State
from verification.spec import JobSpec, Mode


@dataclass(frozen=True)
class Batch:
    step: Step
    indices: np.ndarray
    x: torch.Tensor
    y: torch.Tensor
    part: int = 0  # which micro-batch of the step this is

    def rng(self, key: int, parts: int) -> StepRng:
        """The counter-based RNG of this (step, micro-batch): dropout masks are a pure function of
        the state's RNG key, the step and the micro-batch, on every device."""
        return StepRng(key, self.step * parts + self.part)


@dataclass(frozen=True)
class StepOutput:
    state: State
    loss: float


def resolve_device(name: str) -> torch.device:
    """``auto`` means CUDA when present, CPU otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("job spec asks for device 'cuda' but no CUDA device is available")
    return torch.device(name)


CUBLAS_WORKSPACE = "CUBLAS_WORKSPACE_CONFIG"
EXACT_CUBLAS_WORKSPACE = ":4096:8"


@dataclass(frozen=True)
class TorchSettings:
    """torch's process-wide settings that an execution mode pins, and the one environment
    variable it needs: the intra-op thread count, the deterministic-algorithms switch (and its
    warn-only flag), TF32 for cuBLAS matmuls and for cuDNN, and ``CUBLAS_WORKSPACE_CONFIG``
    (``None``: unset)."""

    threads: int
    deterministic: bool
    deterministic_warn_only: bool
    matmul_tf32: bool
    cudnn_tf32: bool
    cublas_workspace: str | None


def get_torch_settings() -> TorchSettings:
    """The settings in force in this process now."""
    return TorchSettings(torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                         torch.is_deterministic_algorithms_warn_only_enabled(),
                         torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
                         os.environ.get(CUBLAS_WORKSPACE))


def compute_mode_settings(mode: Mode, threads: int, current: TorchSettings) -> TorchSettings:
    """The settings ``mode`` runs under on ``threads`` intra-op threads, from ``current`` (what a
    mode does not pin stays as it is).

    ``exact`` switches torch to deterministic algorithms; cuBLAS then refuses to run unless
    ``CUBLAS_WORKSPACE_CONFIG`` pins its workspace, so the variable is set (when the environment
    has none) before any GPU matmul, and TF32 is off. ``reproducible`` does not need the switch:
    its operators reduce only exact integer sums, whose result no kernel order can change, and the
    switch would fill every fresh tensor with NaN first
    (``torch.utils.deterministic.fill_uninitialized_memory``), doubling the memory traffic of its
    many elementwise kernels. ``ProgramError`` for a thread count below 1."""
    if type(threads) is not int or threads < 1:
        raise ProgramError(f"execution settings need a thread count of at least 1, got {threads!r}")
    if mode != Mode.EXACT:
        return dataclasses.replace(current, threads=threads, deterministic=False, deterministic_warn_only=False)
    # TF32 rounds matmul and convolution inputs to 10 mantissa bits on Ampere and later, and
    # cuDNN allows it by default: exact mode computes in float32 as the CPU does.
    return TorchSettings(threads, True, False, False, False, current.cublas_workspace or EXACT_CUBLAS_WORKSPACE)


def require_cublas_workspace(current: TorchSettings, wanted: TorchSettings) -> None:
    """``ProgramError`` when ``wanted`` sets ``CUBLAS_WORKSPACE_CONFIG`` after CUDA initialised."""
    # Rule: cuBLAS reads its workspace setting when CUDA initialises; set later, it is ignored
    if current.cublas_workspace is None and wanted.cublas_workspace is not None and torch.cuda.is_initialized():
        raise ProgramError(f"exact mode on CUDA needs {CUBLAS_WORKSPACE}=:4096:8 (or :16:8) in the "
                           "environment before CUDA initialises; CUDA is already initialised here")


def apply_torch_settings(settings: TorchSettings, current: TorchSettings) -> None:
    """Make ``settings`` the ones in force, writing only what differs from ``current``."""
    if settings.threads != current.threads:
        torch.set_num_threads(settings.threads)
    if (settings.deterministic, settings.deterministic_warn_only) != (current.deterministic,
                                                                      current.deterministic_warn_only):
        torch.use_deterministic_algorithms(settings.deterministic, warn_only=settings.deterministic_warn_only)
    if settings.matmul_tf32 != current.matmul_tf32:
        torch.backends.cuda.matmul.allow_tf32 = settings.matmul_tf32
    if settings.cudnn_tf32 != current.cudnn_tf32:
        torch.backends.cudnn.allow_tf32 = settings.cudnn_tf32
    if settings.cublas_workspace != current.cublas_workspace:
        if settings.cublas_workspace is None:
            os.environ.pop(CUBLAS_WORKSPACE, None)
        else:
            os.environ[CUBLAS_WORKSPACE] = settings.cublas_workspace


def compute_restored(before: TorchSettings, wanted: TorchSettings, now: TorchSettings) -> TorchSettings:
    """What leaving a context that moved ``before`` to ``wanted`` puts in force, from ``now``:
    each setting the context changed goes back to ``before``; the others stay as they are now
    (entering a context whose settings are already in force changes, and so restores, nothing).
    ``CUBLAS_WORKSPACE_CONFIG`` stays once CUDA initialised under it: cuBLAS read it then and
    keeps it for the life of the process, and the variable says so."""
    changed = {f.name: getattr(before, f.name) for f in dataclasses.fields(TorchSettings)
               if getattr(before, f.name) != getattr(wanted, f.name)}
    if "cublas_workspace" in changed and torch.cuda.is_initialized():
        del changed["cublas_workspace"]
    return dataclasses.replace(now, **changed)


@contextlib.contextmanager
def execution_settings(mode: Mode, threads: int) -> Iterator[TorchSettings]:
    """Run the body under the settings of ``mode`` on ``threads`` intra-op threads
    (``compute_mode_settings``), and put back, on exit, every setting that entering changed
    (``compute_restored``). The settings are process-wide: enter it around a party's or the
    referee's whole work (training, a check, a game), from the thread that starts that work;
    contexts nest. A ``Program`` has its own (``Program.settings``); building one changes nothing."""
    before = get_torch_settings()
    wanted = compute_mode_settings(mode, threads, before)
    require_cublas_workspace(before, wanted)
    apply_torch_settings(wanted, before)
    try:
        yield wanted
    finally:
        now = get_torch_settings()
        apply_torch_settings(compute_restored(before, wanted, now), now)


def configure_mode(mode: Mode, threads: int) -> TorchSettings:
    """Pin the settings of ``mode`` for the rest of the process, with no restore: for a process
    that runs one job's program and nothing else (a benchmark session). Anything else enters
    ``execution_settings``."""
    before = get_torch_settings()
    wanted = compute_mode_settings(mode, threads, before)
    require_cublas_workspace(before, wanted)
    apply_torch_settings(wanted, before)
    return wanted


def compute_environment(device: torch.device) -> str:
    """What ``exact`` mode's bits depend on besides the program: torch's version, the CPU kernels'
    capability (``ATEN_CPU_CAPABILITY``: default, avx2, avx512), the device and the intra-op thread
    count. A solver commits to it; a verifier in another environment cannot judge an exact trace."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return (f"torch={torch.__version__};cpu={torch.backends.cpu.get_cpu_capability()};"
            f"device={name};threads={torch.get_num_threads()}")


def is_same_environment(recorded: str, device: torch.device) -> bool:
    """Whether an environment ``compute_environment`` recorded is this machine's for ``device``
    (torch, CPU kernels, device; the thread count is a process's own setting and is left out)."""
    def fields(environment: str) -> dict[str, str]:
        return {k: v for k, _, v in (part.partition("=") for part in environment.split(";")) if k != "threads"}

    return fields(recorded) == fields(compute_environment(device))


def derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose, derived from the job seed (independent streams)."""
    digest = hash_parts(DOMAIN_STATE, b"seed", purpose.encode(), seed.to_bytes(8, "big"))
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


PARAM, BUFFER, OPTIM = "param/", "buffer/", "optim/"


def group_optimizer_state(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """The ``optim/<param>/<key>`` entries of a State by parameter, keys sorted.

    The order is the canonical one (names sorted), never the dict's insertion order: a State
    computed in memory lists an optimizer's keys in the order torch.optim created them, one read
    from a checkpoint in sorted order, and ``update`` clones them in this order, which the op
    trace records. Two honest parties, one resumed from a checkpoint, must record the same step.
    """
    slots: dict[str, dict[str, torch.Tensor]] = {}
    for name in sorted(k for k in tensors if k.startswith(OPTIM)):
        param, _, key = name[len(OPTIM):].rpartition("/")
        slots.setdefault(param, {})[key] = tensors[name]
    return slots


class Program:
    """A job's training program bound to its committed dataset and a device.

    The program's pieces (``verification.execution.pieces``) are ordinary torch: an ``nn.Module``,
    a ``torch.optim`` optimizer, a schedule and a loss. The step is still a pure map
    ``State -> State``: the module's tensors come from the State through
    ``torch.func.functional_call``, and every update runs a fresh optimizer over copies of the
    State's tensors, loaded with the State's optimizer state (``optim/<param>/<key>``), whose
    results become the next State. Nothing survives between steps outside the State.
    """

    def __init__(self, spec: JobSpec, x: np.ndarray, y: np.ndarray, dataset_root: Root,
                 data_meta: dict, device: torch.device | None = None):
        self.spec = spec
        self.device = device or resolve_device(spec.device)
        with self.settings(), self.initialisation():  # building the module changes no global setting
            module = build_module(spec.model, spec.model_params, data_meta)
            self.module = module.to(self.device).train()
        # S_0's tensors, taken now: functional_call swaps tensors into the module while a step
        # runs, so the live module is not a record of anything (and calls may overlap in threads).
        self.initial = {name: t.detach().clone() for name, t in self.module.state_dict(keep_vars=True).items()}
        self.swap_lock = threading.Lock()
        self.objective = Objective(self.module, resolve_piece("loss", spec.loss, LOSSES), spec.loss)
        self.make_optimizer = resolve_piece("optimizer", spec.optimizer, OPTIMIZERS)
        self.lr_at = make_schedule(spec.schedule, spec.lr, spec.steps, spec.schedule_params)
        self.param_names = sorted(n for n, _ in self.module.named_parameters())
        persistent = set(self.module.state_dict())
        self.buffer_names = sorted(n for n, _ in self.module.named_buffers() if n in persistent)
        self.dataset_root = dataset_root
        self.num_samples = int(x.shape[0])
        self._x = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        self._y = torch.from_numpy(np.ascontiguousarray(y)).to(self.device)

    def settings(self) -> contextlib.AbstractContextManager[TorchSettings]:
        """The context this program's execution runs in: its mode's torch settings on the spec's
        thread count (``execution_settings``), entered by whoever runs it."""
        return execution_settings(self.spec.mode, self.spec.threads)

    def environment(self) -> str:
        """This program's execution environment (``compute_environment``)."""
        return compute_environment(self.device)

    def initialisation(self):
        """Where the module is built: its random draws come from the job seed (a portable
        generator in ``reproducible`` mode, torch's own otherwise, restored afterwards)."""
        seed = derive_seed(self.spec.seed, "init")
        if self.spec.mode == Mode.REPRODUCIBLE:
            return reproducible(seed=seed)
        return seeded_torch_rng(seed, torch.device("cpu"))  # modules are built on the CPU, then moved

    def execution(self, rng: StepRng | None = None):
        """The context every operator of a step runs in: ``reproducible()`` in that mode (with the
        step's RNG for dropout); torch's kernels, seeded from the same RNG, otherwise."""
        if self.spec.mode == Mode.REPRODUCIBLE:
            return reproducible(rng=rng)
        if rng is None:
            return contextlib.nullcontext()
        return seeded_torch_rng(derive_seed(rng.key, f"step/{rng.step}"), self.device)

    def init_state(self) -> State:
        """``S_0``: the module's initial parameters and buffers, the optimizer's initial state."""
        tensors = {PARAM + n: self.initial[n].clone() for n in self.param_names}
        tensors.update({BUFFER + n: self.initial[n].clone() for n in self.buffer_names})
        for n in self.param_names:
            for key, value in zero_state(self.spec.optimizer, self.initial[n]).items():
                tensors[f"{OPTIM}{n}/{key}"] = value.to(self.device) if value.dim() else value
        return State(Step(0), tensors, derive_seed(self.spec.seed, "rng"))

    def batch(self, step: Step) -> Batch:
        """The batch of ``step``: a pure function of (dataset root, seed, step)."""
        idx = batch_indices(self.dataset_root, self.spec.seed, step, self.num_samples, self.spec.batch_size)
        index = torch.from_numpy(idx.copy()).to(self.device)
        return Batch(step, idx, self._x.index_select(0, index), self._y.index_select(0, index))

    def micro_batch(self, batch: Batch, index: int) -> Batch:
        """Micro-batch ``index`` of ``micro_batches`` equal, contiguous slices of ``batch``."""
        size = len(batch.indices) // self.spec.micro_batches
        part = slice(index * size, (index + 1) * size)
        return Batch(batch.step, batch.indices[part], batch.x[part], batch.y[part], index)

    def gradients(self, state: State, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Gradients of the mean loss over ``batch`` w.r.t. every parameter, and that loss."""
        params = {n: state.tensors[PARAM + n].detach().requires_grad_(True) for n in self.param_names}
        buffers = {n: state.tensors[BUFFER + n] for n in self.buffer_names}
        versions = {n: b._version for n, b in buffers.items()}
        inputs = {f"model.{n}": t for n, t in {**params, **buffers}.items()}
        with self.execution(batch.rng(state.rng, self.spec.micro_batches)):
            with self.swap_lock:  # the module holds this State's tensors until the call returns
                loss = torch.func.functional_call(self.objective, inputs, (batch.x, batch.y), strict=True)
            grads = torch.autograd.grad(loss, [params[n] for n in self.param_names], allow_unused=True)
        changed = [n for n, b in buffers.items() if b._version != versions[n]]
        if changed:
            raise ProgramError(f"model {self.spec.model!r} changes buffers {changed} while training (e.g. "
                               "BatchNorm running statistics); the State carries buffers unchanged: use "
                               "track_running_stats=False or a LayerNorm")
        grads = [torch.zeros_like(params[n]) if g is None else g for n, g in zip(self.param_names, grads, strict=True)]
        return dict(zip(self.param_names, grads, strict=True)), loss.detach()

    def combine(self, parts: list[tuple[dict[str, torch.Tensor], torch.Tensor]]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Mean of micro-batch gradients, summed in micro-batch order (a fixed reduction order:
        data-parallel workers and a single process reduce identically)."""
        if len(parts) == 1:
            return parts[0]
        with torch.no_grad(), self.execution():
            grads = {}
            for name in parts[0][0]:
                total = parts[0][0][name]
                for g, _ in parts[1:]:
                    total = total + g[name]
                grads[name] = total / len(parts)
            loss = parts[0][1]
            for _, part_loss in parts[1:]:
                loss = loss + part_loss
            loss = loss / len(parts)
        return grads, loss

    def update(self, state: State, grads: dict[str, torch.Tensor], lr: float | None = None) -> State:
        """One ``optimizer.step()`` of the job's torch.optim optimizer on copies of the State's
        tensors; ``lr`` overrides the schedule's rate for this step."""
        step = Step(state.step + 1)
        lr = self.lr_at(step) if lr is None else lr
        with torch.no_grad(), self.execution():
            params = [state.tensors[PARAM + n].clone() for n in self.param_names]
            for p, n in zip(params, self.param_names, strict=True):
                p.grad = grads[n]
            terms = OptimizerTerms(lr, self.spec.momentum, self.spec.weight_decay, dict(self.spec.optimizer_params))
            optimizer = self.make_optimizer(params, terms if self.spec.optimizer in OPTIMIZERS else terms.params)
            check_optimizer(self.spec.optimizer, optimizer)
            slots = group_optimizer_state(state.tensors)
            for p, n in zip(params, self.param_names, strict=True):
                if n in slots:
                    optimizer.state[p] = {key: t.clone() for key, t in slots[n].items()}
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
        tensors = {PARAM + n: p.detach() for p, n in zip(params, self.param_names, strict=True)}
        tensors.update({BUFFER + n: state.tensors[BUFFER + n] for n in self.buffer_names})
        for p, n in zip(params, self.param_names, strict=True):
            tensors.update(capture_optimizer_state(self.spec.optimizer, n, optimizer.state.get(p, {})))
        # An optimizer sits in reference cycles (its step hooks), freed only when the cyclic GC
        # runs; emptied now, it keeps no tensor alive past the step. Tensor lifetimes change which
        # operators autograd runs (an unpacked saved tensor costs a detach while its original lives),
        # so they must not depend on when the GC happens to run.
        optimizer.state.clear()
        optimizer.param_groups.clear()
        for p in params:
            p.grad = None
        return State(step, tensors, state.rng)

    def step(self, state: State, batch: Batch, lr: float | None = None) -> StepOutput:
        """One optimizer step ``S_{t-1} -> S_t`` on ``batch`` (``lr`` overrides the schedule's)."""
        parts = [self.gradients(state, self.micro_batch(batch, r)) for r in range(self.spec.micro_batches)]
        grads, loss = self.combine(parts)
        return StepOutput(self.update(state, grads, lr), float(loss))

    def run(self, state: State, end: Step) -> State:
        """Honest execution from ``state`` up to step ``end``."""
        while state.step < end:
            state = self.step(state, self.batch(Step(state.step + 1))).state
        return state


class RealScalars(TorchDispatchMode):
    """Under a ``FakeTensorMode``: operators whose tensor inputs are all real 0-d tensors run for
    real. An optimizer's scalar state (Adam's ``step``) is read with ``.item()`` into the Python
    arithmetic of its update, so a fake replay of a step needs those values, and they never
    depend on a tensor's contents (the schedule of a step is a function of the spec, the
    shapes and this scalar state)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        if tensors and all(not isinstance(t, FakeTensor) and t.dim() == 0 for t in tensors):
            with _disable_current_modes():
                return func(*args, **kwargs)
        return func(*args, **kwargs)


def fake_state(fake: FakeTensorMode, state: State) -> State:
    """``state`` with every tensor fake except the 0-d ones (``RealScalars``)."""
    return State(state.step, {n: t if t.dim() == 0 else fake.from_tensor(t) for n, t in state.tensors.items()},
                 state.rng)


def fake_batch(fake: FakeTensorMode, batch: Batch) -> Batch:
    return Batch(batch.step, batch.indices, fake.from_tensor(batch.x), fake.from_tensor(batch.y), batch.part)


def advance_fake(program: Program, fake: FakeTensorMode, state: State, end: Step) -> State:
    """Honest steps on fake tensors up to ``end`` (zero FLOPs; run under fake and ``RealScalars``)."""
    while state.step < end:
        batch = program.batch(Step(state.step + 1))
        parts = [program.gradients(state, program.micro_batch(fake_batch(fake, batch), r))
                 for r in range(program.spec.micro_batches)]
        state = program.update(state, program.combine(parts)[0])
    return state


def honest_step(program: Program, state: State) -> StepOutput:
    """The step every honest party computes: ``program.step`` on step ``state.step + 1``'s batch."""
    return program.step(state, program.batch(Step(state.step + 1)))


def dry_run(program: Program) -> None:
    """One step of the program on fake tensors: the module, loss, optimizer, schedule and (in
    ``reproducible`` mode) the coverage of every operator are checked before any work, at zero
    FLOPs. Raises ``ProgramError``/``UncoveredOperatorError``/the plug-in's own error."""
    fake = FakeTensorMode(allow_non_fake_inputs=True)
    with fake, RealScalars():
        advance_fake(program, fake, fake_state(fake, program.init_state()), Step(1))


def check_optimizer(name: str, optimizer: Any) -> None:
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ProgramError(f"optimizer {name!r} returned a {type(optimizer).__name__}, not a torch.optim.Optimizer")
    for group in optimizer.param_groups:
        if group.get("foreach") or group.get("fused"):
            raise ProgramError(f"optimizer {name!r} uses foreach/fused kernels, whose results depend on the "
                               "device: construct it with foreach=False, fused=False")


def capture_optimizer_state(name: str, param: str, state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The optimizer's state of one parameter as State tensors ``optim/<param>/<key>``."""
    captured = {}
    for key, value in sorted(state.items()):
        if not isinstance(value, torch.Tensor):
            raise ProgramError(f"optimizer {name!r} keeps state {key!r} of parameter {param!r} as a "
                               f"{type(value).__name__}; only tensors can be committed")
        captured[f"{OPTIM}{param}/{key}"] = value.detach()
    return captured


@contextlib.contextmanager
def seeded_torch_rng(seed: int, device: torch.device):
    """torch's default generator of ``device`` seeded with ``seed`` inside, restored afterwards
    (the generator's own ``manual_seed``: ``torch.manual_seed`` also queues every other device's)."""
    generator = torch.cuda.default_generators[device.index or 0] if device.type == "cuda" else torch.default_generator
    saved = generator.get_state()
    generator.manual_seed(seed & ((1 << 63) - 1))
    try:
        yield
    finally:
        generator.set_state(saved)


def load_program(spec: JobSpec, dataset: DatasetCommitment, device: torch.device | None = None) -> Program:
    """The job's program on the committed data (every shard verified against its root)."""
    x, y = load_dataset(dataset)
    return Program(spec, x, y, dataset.root, dataset.meta, device)
