"""Parties in their own processes: the protocol boundary between the coordinator and each party.

Terms
-----
coordinator
    The process that runs the lifecycle: it validates the job, drives the dispute game, runs the
    referee and settles. It imports Pinpoint's own code only: a plug-in strategy
    (``"package.module:attr"``) is imported in a party process, never here, so a plug-in's module
    code cannot patch the referee, the verifier or the ledger.
party process
    One OS process per party and task (a solver's training, its provider in a dispute, the
    verifier's replica and challenger), forked from a fork server that has imported torch and
    Pinpoint once (``multiprocessing``'s ``forkserver`` context: a clean, fast child that shares no
    object with the coordinator). The party builds its own program from the job spec and the
    committed dataset.
request / answer
    The coordinator sends a method name and integer arguments (JSON); the party answers with
    ``torch.save`` bytes that the coordinator decodes with ``torch.load(weights_only=True)``
    restricted to the protocol's message classes (``ANSWER_CLASSES``), so an answer can be
    garbage but cannot run code in the coordinator (pickle's ``find_class`` is not reachable).
failure
    A party that raises, exits, hangs past its deadline, or answers something that does not
    decode is a ``PartyError`` naming the party and what it did; the dispute game turns it into a
    forfeit (``verification.dispute.ChessClock``). A hung party's process is killed.

This is the shape the provider interface has on a network (OffchainLabs' BoLD talks to its
backend through the same narrow calls); isolation costs one process start per party and task plus
the encoding of each answer (benchmark group ``isolation``).
"""

from __future__ import annotations

import io
import json
import multiprocessing
import multiprocessing.connection
import threading
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from proofs.merkle import MerkleProof
from proofs.messages import Commitment, Signed
from verification.execution.opgraph import InputKind, InputRef, Operands, OpRecord, OpsCommitment
from verification.execution.state import State
from verification.solver import TrainingRun

# torch's safe_globals is process-wide state, not per thread: answers decoded on two threads at
# once (solvers train side by side) would clear each other's allowlist mid-load.
DECODE_LOCK = threading.Lock()
MAX_ANSWER_BYTES = 1 << 32  # an answer larger than this is refused (a party cannot flood memory)
NUMPY_GLOBALS = [np._core.multiarray._reconstruct, np.ndarray, np.dtype,
                 *{type(np.dtype(code)) for code in "?bhilqBHILQefd"}]
# Everything an answer may contain besides tensors, numbers, strings, bytes and containers.
ANSWER_CLASSES: list[Any] = [MerkleProof, InputRef, InputKind, OpRecord, OpsCommitment, Operands, State, TrainingRun,
                             Commitment, Signed, *NUMPY_GLOBALS]


class PartyError(RuntimeError):
    """A party failed: it raised, exited, hung past its deadline or sent an undecodable answer."""

    def __init__(self, party: str, reason: str):
        super().__init__(f"{party}: {reason}")
        self.party = party
        self.reason = reason


class PartyTimeout(PartyError):
    """A party did not answer within its deadline (its process was killed)."""


def encode_answer(status: str, value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save((status, value), buffer)
    return buffer.getvalue()


def decode_answer(party: str, data: bytes) -> tuple[str, Any]:
    """``(status, value)`` of an answer; ``PartyError`` for anything that is not one."""
    try:
        with DECODE_LOCK, torch.serialization.safe_globals(ANSWER_CLASSES):
            answer = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 -- any decoding failure is the party's
        raise PartyError(party, f"sent an answer that does not decode: {type(exc).__name__}: "
                                f"{str(exc).splitlines()[0][:200]}") from None
    if not (isinstance(answer, tuple) and len(answer) == 2 and answer[0] in ("ok", "error")):
        raise PartyError(party, f"sent a malformed answer of type {type(answer).__name__}")
    return answer


def describe_exception(exc: BaseException) -> str:
    """``ValueError: message (file.py:12 in fn)``: what a party raised, for a forfeit reason."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    return f"{type(exc).__name__}: {str(exc)[:300]}{where}"


def get_context() -> multiprocessing.context.BaseContext:
    """The fork-server context, its server preloaded with torch and the party-side modules."""
    context = multiprocessing.get_context("forkserver")
    # torch._inductor: torch.use_deterministic_algorithms (every Program) imports it, ~3 s a process.
    context.set_forkserver_preload(["verification.parties", "verification.providers", "torch._inductor"])
    return context


# -- the party side ----------------------------------------------------------------------------
def serve(conn: multiprocessing.connection.Connection, build: Callable[..., Any], args: tuple) -> None:
    """A party process: build the party's object, then answer requests until the pipe closes."""
    try:
        target, failure = build(*args), None
    except BaseException as exc:  # noqa: BLE001 -- reported to the coordinator as the party's failure
        target, failure = None, f"could not start: {describe_exception(exc)}"
    while True:
        try:
            method, call_args = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        conn.send_bytes(answer(target, failure, method, call_args))


def answer(target: Any, failure: str | None, method: str, args: list) -> bytes:
    if failure is not None:
        return encode_answer("error", failure)
    if method.startswith("_") or not callable(getattr(target, method, None)):
        return encode_answer("error", f"has no method {method!r}")
    try:
        return encode_answer("ok", getattr(target, method)(*args))
    except BaseException as exc:  # noqa: BLE001 -- the party's own failure, reported as such
        return encode_answer("error", describe_exception(exc))


# -- the coordinator side ----------------------------------------------------------------------
def allow_children() -> None:
    """Let this process start party processes even when it is a daemonic worker (a Dagster-dask
    step): multiprocessing refuses children to daemons so that none outlives them, and a party
    process never does (``PartyProcess.close``; a party also exits when its pipe closes)."""
    current = multiprocessing.current_process()
    if current.daemon:
        current.daemon = False


class PartyProcess:
    """A party running in its own process, reached only by ``request``."""

    def __init__(self, party: str, build: Callable[..., Any], *args: Any):
        context = get_context()
        allow_children()
        self.party = party
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, build, args), name=f"pinpoint-{party}",
                                        daemon=True)
        self.process.start()
        child.close()

    def request(self, method: str, *args: int, timeout: float | None = None) -> Any:
        """Ask the party; ``PartyError`` if it fails, ``PartyTimeout`` after ``timeout`` seconds."""
        try:
            self.conn.send_bytes(json.dumps([method, list(args)]).encode())
            if not self.conn.poll(timeout):
                self.close()
                raise PartyTimeout(self.party, f"no answer to {method}{tuple(args)} within {timeout:.2f}s")
            data = self.conn.recv_bytes(MAX_ANSWER_BYTES)
        except (EOFError, OSError, ValueError):
            raise PartyError(self.party, f"stopped answering {method}{tuple(args)}: {self.get_exit()}") from None
        status, value = decode_answer(self.party, data)
        if status == "error":
            raise PartyError(self.party, str(value))
        return value

    def get_exit(self) -> str:
        self.process.join(timeout=5.0)
        code = self.process.exitcode
        return "its process is still running" if code is None else f"its process exited with code {code}"

    def close(self) -> None:
        """Stop the party's process (a hung one is killed) and release the pipe."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=10.0)
        self.conn.close()

    def __enter__(self) -> PartyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Task:
    """A party object with one method: ``result`` runs the task it was started with."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        self.fn, self.args = fn, args

    def result(self) -> Any:
        return self.fn(*self.args)


def run_in_party(party: str, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
    """``fn(*args)`` in a fresh party process; its result decoded as an answer. ``PartyError``
    (naming ``party``) if it raises, exits or runs past ``timeout`` seconds."""
    with PartyProcess(party, Task, fn, *args) as process:
        return process.request("result", timeout=timeout)


class RemoteProvider:
    """The dispute game's ``Provider`` for a party in its own process (``verification.providers``):
    each call is a request; ``close`` (called by the game's clock on a deadline) kills it."""

    METHODS = frozenset({"checkpoint_root", "commit_steps", "step_root", "open_state", "commit_ops",
                         "op_digest", "open_op", "open_operands"})

    def __init__(self, party: str, build: Callable[..., Any], *args: Any):
        self.party = party
        self.process = PartyProcess(party, build, *args)

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method not in RemoteProvider.METHODS:
            raise AttributeError(method)

        def call(*args: int) -> Any:
            return self.process.request(method, *(int(a) for a in args))

        call.__name__ = method
        return call

    def close(self) -> None:
        self.process.close()
