"""Data-parallel training of one solver's job on ``R`` processes, verifiable on one process.

The solver's side of data parallelism; the step itself (micro-batches, the fixed-order all-gather
and combine) is ``verification.execution.distributed``, which knows no party.

Processes and network: ``train_data_parallel`` spawns ``R`` workers with ``torch.multiprocessing``.
The parent hosts the rendezvous (a ``TCPStore``) on a socket it binds to 127.0.0.1 itself — a
``TCPStore`` that binds its own socket listens on every interface — and every worker pins gloo
(``GLOO_SOCKET_IFNAME``) and NCCL (``NCCL_SOCKET_IFNAME``) to the loopback interface: nothing is
reachable from outside the machine. Backends: gloo on CPU, NCCL on CUDA (rank ``r`` on
``cuda:r``). Each worker builds its ``Program`` and runs it under the program's settings
(``Program.settings``: ``torch.set_num_threads(spec.threads)`` and the deterministic-algorithm
switch of the spec's mode).

Strategies run on every rank (the replicas must stay identical), on a program whose ``step`` is the
data-parallel one: a ``bitflip`` cheater flips its bit after the all-gather and the combine. Rank 0
trains with ``verification.solver.train`` — same checkpoints, roots and ``TrainingRun`` as one
process — and at the end every rank's final state root is compared, so replicas that drifted apart
(a rank-dependent strategy, a faulty worker) fail the run instead of committing one rank's view.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import pickle
import socket
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from datasets import storage
from datasets.sharding import DatasetCommitment
from proofs.types import JobId, Root, SolverId
from verification.execution.distributed import DataParallelProgram, PeerLost, all_gather_roots
from verification.execution.program import Program, resolve_device
from verification.execution.state import State
from verification.parties import decode_answer, encode_answer
from verification.solver import TrainingRun, get_forced_error_ticket, resolve_solver_strategy, train
from verification.spec import JobSpec, SolverSpec, SpecError, validate_spec
from verification.strategies import Strategy, is_plugin, resolve_strategy

LOOPBACK = "127.0.0.1"
COLLECTIVE_TIMEOUT = datetime.timedelta(seconds=120)  # a rank stuck this long fails the run
JOIN_POLL_S = 0.5
TERMINATE_GRACE_S = 5.0
RESULT_FILE = "training-run.pkl"

class DataParallelError(RuntimeError):
    """A data-parallel run cannot start or a worker failed; the message names the rank or value."""


@dataclass(frozen=True)
class DataParallelJob:
    """Everything a worker needs (pickled to each spawned process)."""

    spec: JobSpec
    dataset: DatasetCommitment
    strategy_name: str
    strategy_params: dict[str, Any]
    path: str
    job_id: JobId
    solver_id: SolverId
    world_size: int
    backend: str
    device_type: str


# -- one worker --------------------------------------------------------------------------------
def get_loopback_interface() -> str:
    """The name of the loopback interface (``lo`` on Linux, ``lo0`` on macOS/BSD)."""
    names = {name for _, name in socket.if_nameindex()}
    for name in ("lo", "lo0"):
        if name in names:
            return name
    raise DataParallelError(f"no loopback interface among {sorted(names)}")


def compute_worker_device(device_type: str, rank: int) -> torch.device:
    return torch.device(f"cuda:{rank}") if device_type == "cuda" else torch.device("cpu")


def run_replica(program: Program, strategy: Strategy) -> State:
    """A rank other than 0: the same steps as rank 0's ``train``, with nothing written."""
    state = program.init_state()
    while state.step < program.spec.steps:
        state = strategy.run_step(program, state).state
    return state


def check_replicas(job: DataParallelJob, roots: list[Root]) -> None:
    # Replica rule: every rank ends on the state rank 0 committed to.
    differing = [r for r, root in enumerate(roots) if root != roots[0]]
    if differing:
        raise DataParallelError(
            f"data-parallel run of solver {job.solver_id!r}: final state root of rank(s) {differing} "
            f"({roots[differing[0]].hex()}) differs from rank 0's ({roots[0].hex()}); replicas drifted apart")


def process_worker(rank: int, job: DataParallelJob, port: int, result_path: str) -> None:
    """Entry point of worker ``rank`` (spawned): join the group, train, rank 0 writes the result."""
    interface = get_loopback_interface()
    os.environ["GLOO_SOCKET_IFNAME"] = interface
    os.environ["NCCL_SOCKET_IFNAME"] = interface
    device = compute_worker_device(job.device_type, rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    store = dist.TCPStore(LOOPBACK, port, job.world_size, is_master=False, timeout=COLLECTIVE_TIMEOUT)
    dist.init_process_group(job.backend, store=store, rank=rank, world_size=job.world_size,
                            timeout=COLLECTIVE_TIMEOUT)
    try:
        program = DataParallelProgram(job.spec, job.dataset, device, rank, job.world_size)
        strategy = resolve_solver_strategy(job.spec, job.job_id,
                                           SolverSpec(job.solver_id, job.strategy_name, job.strategy_params))
        if rank == 0:
            process_rank_zero(job, program, strategy, device, Path(result_path))  # ``train`` enters the settings
        else:
            with program.settings():  # the same settings as rank 0's ``train``
                final = run_replica(program, strategy).root(job.spec.hashing)
            all_gather_roots(final, device, job.world_size)
    finally:
        dist.destroy_process_group()


def process_rank_zero(job: DataParallelJob, program: Program, strategy: Strategy,
                      device: torch.device, result_path: Path) -> None:
    """Train with checkpoints into a staging store; publish it at ``job.path`` only once every
    replica ended on the same state."""
    path, staged = job.path, storage.compute_staging(job.path, ".unchecked")
    run = train(program, strategy, staged, job.job_id, job.solver_id)
    try:
        check_replicas(job, all_gather_roots(run.final_root, device, job.world_size))
    except DataParallelError:
        storage.remove(staged)
        raise
    storage.publish(staged, path)
    ticket = get_forced_error_ticket(job.spec, job.job_id, job.solver_id)
    run = dataclasses.replace(run, checkpoint_path=path, forced_error_ticket="" if ticket is None else ticket.hex())
    result_path.write_bytes(encode_answer("ok", run))


# -- the parent --------------------------------------------------------------------------------
def check_world_size(spec: JobSpec, world_size: int) -> None:
    # Data-parallel rule: one micro-batch per rank, so the run equals Program.step with R micro-batches.
    if spec.micro_batches != world_size:
        raise SpecError(f"data-parallel training needs spec micro_batches == world_size, got "
                        f"micro_batches={spec.micro_batches} and world_size={world_size}")


def compute_backend(device_type: str) -> str:
    return "nccl" if device_type == "cuda" else "gloo"


def check_backend(backend: str, device_type: str, world_size: int) -> None:
    if not dist.is_available() or not dist.is_backend_available(backend):
        raise DataParallelError(f"torch.distributed backend {backend!r} is not available in this torch build")
    if device_type == "cuda" and torch.cuda.device_count() < world_size:
        raise DataParallelError(f"data-parallel training on CUDA needs one device per rank: "
                                f"world_size={world_size}, CUDA devices={torch.cuda.device_count()}")


def open_listener(port: int | None) -> tuple[int, int]:
    """A listening TCP socket on 127.0.0.1 (``port``, or a free one): its file descriptor and port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((LOOPBACK, port or 0))
        sock.listen()
    except OSError as exc:
        sock.close()
        raise DataParallelError(f"cannot listen on {LOOPBACK}:{port}: {exc}") from exc
    bound = sock.getsockname()[1]
    return sock.detach(), bound


def start_store(port: int | None) -> dist.TCPStore:
    """The rendezvous store, hosted by the parent on a 127.0.0.1-only socket handed to it (the
    store owns and closes that socket)."""
    fd, bound = open_listener(port)
    try:
        return dist.TCPStore(LOOPBACK, bound, None, is_master=True, timeout=COLLECTIVE_TIMEOUT,
                             wait_for_workers=False, master_listen_fd=fd)
    except Exception:
        with suppress(OSError):
            os.close(fd)
        raise


def read_worker_errors(context: mp.ProcessContext) -> dict[int, str]:
    """The traceback each failed rank left in its error file (torch.multiprocessing's spawn)."""
    errors = {}
    for rank, path in enumerate(context.error_files):
        with suppress(OSError, EOFError, pickle.UnpicklingError):
            with open(path, "rb") as fh:
                errors[rank] = str(PlainUnpickler(fh).load())
    return errors


class PlainUnpickler(pickle.Unpickler):
    """Reads a worker's error file (a pickled string) and refuses every global: a worker cannot
    make the coordinator run code through it."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a worker's error file names {module}.{name}: refused")


def compute_root_cause(first: int, message: str, errors: dict[int, str]) -> tuple[int, str]:
    """The failure to report: the lowest rank whose error is not a ``PeerLost`` consequence of
    another rank leaving; else the first failure seen (which rank exits first is a race)."""
    errors = {**errors, first: message}
    causes = sorted(rank for rank, text in errors.items() if PeerLost.__name__ not in text)
    rank = causes[0] if causes else first
    return rank, errors[rank]


def join_workers(context: mp.ProcessContext, solver_id: SolverId) -> None:
    """Wait for every worker; on a failure the others get ``TERMINATE_GRACE_S`` to exit and report,
    and the root cause is raised with its rank."""
    try:
        while not context.join(timeout=JOIN_POLL_S, grace_period=TERMINATE_GRACE_S):
            pass
    except mp.ProcessRaisedException as exc:
        rank, message = compute_root_cause(exc.error_index, str(exc), read_worker_errors(context))
        raise DataParallelError(f"data-parallel run of solver {solver_id!r}: rank {rank} "
                                f"failed:\n{message}") from exc
    except mp.ProcessExitedException as exc:
        raise DataParallelError(f"data-parallel run of solver {solver_id!r}: rank {exc.error_index} "
                                f"exited with code {exc.exit_code}") from exc
    finally:
        stop_workers(context)


def stop_workers(context: mp.ProcessContext) -> None:
    """Terminate (then kill) any worker still alive; no-op once all have exited."""
    for process in context.processes:
        if process.is_alive():
            process.terminate()
            process.join(TERMINATE_GRACE_S)
        if process.is_alive():
            process.kill()
            process.join()


def train_data_parallel(spec: JobSpec, dataset_commitment: DatasetCommitment, strategy_name: str,
                        strategy_params: dict[str, Any], path: str | Path, job_id: JobId,
                        solver_id: SolverId, world_size: int = 2, backend: str | None = None,
                        master_port: int | None = None) -> TrainingRun:
    """Train one solver's job on ``world_size`` processes on this machine (127.0.0.1 only).

    Returns rank 0's ``TrainingRun``: its checkpoints and roots are those ``solver.train`` writes
    for the same spec on one process. ``backend`` defaults to NCCL on CUDA and gloo on CPU;
    ``master_port`` defaults to a free port. Workers are spawned, so a calling script needs the
    ``if __name__ == "__main__":`` guard (spawn re-imports the main module).
    """
    validate_spec(spec)
    check_world_size(spec, world_size)
    if not is_plugin(strategy_name):  # a bad catalog strategy fails before any spawn; plug-ins only
        resolve_strategy(strategy_name, strategy_params)  # ever import in the workers

    device_type = resolve_device(spec.device).type
    backend = backend or compute_backend(device_type)
    check_backend(backend, device_type, world_size)
    job = DataParallelJob(spec, dataset_commitment, strategy_name, dict(strategy_params),
                          storage.as_location(path), job_id, solver_id, world_size, backend, device_type)
    store = start_store(master_port)  # held until the workers have exited
    with tempfile.TemporaryDirectory(prefix="pinpoint-dp-") as tmp:
        result_path = Path(tmp) / RESULT_FILE
        context = mp.start_processes(process_worker, args=(job, store.port, str(result_path)),
                                     nprocs=world_size, join=False, start_method="spawn")
        join_workers(context, solver_id)
        # A worker's result is a party's answer: decoded without running any code it could carry.
        _, run = decode_answer(solver_id, result_path.read_bytes())
        return run

