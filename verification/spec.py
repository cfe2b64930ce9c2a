"""The job spec: everything that defines one verifiable training job.

A job spec fixes the dataset, the training program (model, optimizer, hyper-parameters, seed,
steps ``T``, checkpoint interval ``k``, execution mode), the verification policy (spot-check
probability ``p``, policy, dissection arity) and the economics (payment, stakes, bonds), plus the
solvers that compete for it, each with a *strategy*: ``honest``, a catalog adversary, or a plug-in
``"package.module:attr"`` (docs/design.md §4).

The job id is content-addressed: ``job-`` + the first 12 hex digits of the SHA-256 of the spec's
canonical JSON. Two identical specs are the same job, so re-running one never settles it twice.
The verifier's challenger strategy (``challenger_strategy``/``challenger_params``, e.g. a
``false_challenger`` to study the game's other direction) enters the id only when it is not the
honest default, so a job's id does not change with fields that it does not use.

Presets: ``default`` (the demo job, embedded so that the Dagster CLI needs no run config),
``minimal`` (seconds, for tests), in the spirit of consensus-specs' ``minimal``/``mainnet``, and
``gpt`` (a char-level transformer with AdamW and a cosine schedule: a workload that looks like
research).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import re
import typing
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from proofs.hashing import HASH_NAMES, Hashing, get_hashing
from proofs.types import HashName, JobId, PartyId, SolverId, describe_unknown
from verification.settlement.rules import EconomicTerms, InvalidTermsError

REFEREE_ID = "referee"  # the party that rules on disputes and signs its rulings


class Mode(StrEnum):
    """How the program executes (docs/design.md §3)."""

    EXACT = "exact"  # torch's deterministic kernels: bit-identical on one environment
    REPRODUCIBLE = "reproducible"  # Pinpoint's operators: bit-identical across CPUs, threads and devices
    TOLERANCE = "tolerance"  # native kernels, states compared by distance (Proof-of-Learning)


class Policy(StrEnum):
    """How a verifier spot-checks a solver it selected (``verification.verifier``)."""

    REPLICATE = "replicate"  # re-execute the whole job
    INTERVAL = "interval"  # re-execute sampled intervals from the solver's checkpoints


MODES = tuple(m.value for m in Mode)
POLICIES = tuple(p.value for p in Policy)
ENUM_FIELDS = {"mode": Mode, "spot_check_policy": Policy, "hash_name": HashName}
OPTIMIZERS = ("sgd", "sgd_momentum", "adam", "adamw")  # verification.execution.pieces.OPTIMIZERS
SCHEDULES = ("constant", "cosine")
LOSSES = ("cross_entropy", "mse")


class SpecError(ValueError):
    """A job spec is malformed or inconsistent; the message names the field and the value."""


@dataclass(frozen=True)
class SolverSpec:
    """One solver: its id, strategy name (catalog or ``module:attr``) and strategy parameters."""

    solver_id: SolverId
    strategy: str = "honest"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobSpec:
    name: str = "default"
    # data
    dataset: str = "digits"
    dataset_params: dict[str, Any] = field(default_factory=dict)
    num_shards: int = 4
    # program
    model: str = "mlp"
    model_params: dict[str, Any] = field(default_factory=lambda: {"hidden": 64})
    loss: str = "cross_entropy"  # catalog or plug-in "package.module:attr" (verification.execution.pieces)
    optimizer: str = "sgd_momentum"  # sgd, sgd_momentum, adam, adamw, or a plug-in
    optimizer_params: dict[str, Any] = field(default_factory=dict)  # e.g. {"betas": [0.9, 0.95]}
    lr: float = 0.05  # the base learning rate; the schedule scales it per step
    momentum: float = 0.9  # sgd_momentum's
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant, cosine, or a plug-in returning an LRScheduler
    schedule_params: dict[str, Any] = field(default_factory=dict)  # cosine: warmup_steps, min_lr_ratio
    batch_size: int = 32
    micro_batches: int = 1  # gradient of a step = mean over equal micro-batches, summed in order
    data_parallel: bool = False  # one process per micro-batch (torch.distributed); same bits
    seed: int = 0
    steps: int = 300
    checkpoint_interval: int = 25
    mode: Mode = Mode.EXACT
    tolerance_rho: float = 0.1  # mode "tolerance": accepted distance / distance re-execution moved
    threads: int = 1
    device: str = "auto"
    # commitments
    hash_name: HashName = HashName.SHA256
    # verification
    spot_check_probability: float = 1.0
    spot_check_policy: Policy = Policy.REPLICATE
    intervals_per_check: int = 2
    dissection_arity: int = 2
    operator_level: bool = True
    party_time_budget_s: float = 0.0  # each dispute party's chess clock, fixed seconds; 0: derived, in honest steps
    solver_deadline_s: float = 0.0  # train and sign by then or forfeit; 0: derived from the job's step cost
    challenger_strategy: str = "honest"  # the verifier's strategy when it challenges (catalog or plug-in)
    challenger_params: dict[str, Any] = field(default_factory=dict)
    # parties and economics
    submitter: PartyId = PartyId("submitter")
    verifier: PartyId = PartyId("verifier")  # the lead verifier: its policy and challenger strategy apply
    # Further verifiers of the job's committee (``get_committee``): each commits to a coin of its
    # own, checks the solvers it selects by the interval policy, honestly, and signs its verdicts.
    attesters: tuple[PartyId, ...] = ()
    economics: EconomicTerms = field(default_factory=EconomicTerms)  # the one schedule settlement applies
    compute_cost: int = 800  # token units honest training costs a solver (declared; the incentive study's C)
    verifier_cost: int = 100  # token units one spot check costs the verifier (declared; the study's v)
    solvers: tuple[SolverSpec, ...] = (
        SolverSpec(SolverId("honest"), "honest"),
        SolverSpec(SolverId("lazy"), "lazy", {"start": 101, "length": 25}),
        SolverSpec(SolverId("bitflip"), "bitflip", {"step": 137}),
    )

    def __post_init__(self) -> None:
        # A protocol noun given as its string becomes its member; an unknown string is left for
        # validate_spec to name with the choices.
        for name, kind in ENUM_FIELDS.items():
            value = getattr(self, name)
            if isinstance(value, str) and not isinstance(value, kind) and value in {m.value for m in kind}:
                object.__setattr__(self, name, kind(value))

    @property
    def num_checkpoints(self) -> int:
        """Checkpoints at steps 0, k, 2k, …, T."""
        return self.steps // self.checkpoint_interval + 1

    @property
    def hashing(self) -> Hashing:
        """The hash context of ``hash_name`` (``proofs.hashing``): what every root of the job is
        hashed with. ``UnknownHashError`` naming the value for a spec that ``validate_spec`` refuses."""
        return get_hashing(self.hash_name)


PRESETS: dict[str, JobSpec] = {
    # Three verifiers: the lead replicates the job, two attesters re-execute sampled intervals;
    # their matching verdicts aggregate into one BLS signature per solver (verification.protocol).
    "default": JobSpec(attesters=(PartyId("verifier-2"), PartyId("verifier-3"))),
    "minimal": JobSpec(
        name="minimal",
        num_shards=2,
        model_params={"hidden": 16},
        steps=40,
        checkpoint_interval=8,
        solvers=(
            SolverSpec(SolverId("honest"), "honest"),
            SolverSpec(SolverId("lazy"), "lazy", {"start": 9, "length": 8}),
            SolverSpec(SolverId("bitflip"), "bitflip", {"step": 21}),
        ),
    ),
    # A char-level nanoGPT on the text of the running Python's standard library, trained the way
    # such a model is: AdamW (decoupled weight decay, betas of nanoGPT's shakespeare-char), a cosine
    # schedule with warm-up, reproducible mode (bits that hold across CPUs and GPUs). Small enough
    # for a CPU in a minute; benchmarks/test_bench_gpt.py grows it to 10.9M parameters.
    "gpt": JobSpec(
        name="gpt",
        dataset="text",
        dataset_params={"block": 32, "max_bytes": 2_000_000},
        num_shards=2,
        model="transformer",
        model_params={"n_layer": 2, "n_head": 2, "n_embd": 64},
        optimizer="adamw",
        optimizer_params={"betas": [0.9, 0.99]},
        lr=1e-3,
        weight_decay=0.1,
        schedule="cosine",
        schedule_params={"warmup_steps": 2},
        batch_size=8,
        steps=8,
        checkpoint_interval=4,
        mode="reproducible",
        solvers=(
            SolverSpec(SolverId("honest"), "honest"),
            SolverSpec(SolverId("bitflip"), "bitflip", {"step": 6, "tensor": "param/lm_head.weight"}),
        ),
    ),
}


def get_preset(name: str) -> JobSpec:
    if name not in PRESETS:
        raise SpecError(describe_unknown("preset", name, PRESETS))
    return PRESETS[name]


def get_committee(spec: JobSpec) -> tuple[PartyId, ...]:
    """The job's verifier committee, in order: the lead ``verifier``, then its ``attesters``. The
    order is the protocol's: the first member whose check of a solver found a mismatch challenges
    it (``verification.protocol.process_challenge``)."""
    return (spec.verifier, *spec.attesters)


def spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    """Plain JSON form (the report's ``spec`` block): only dicts, lists, str, int, float, bool."""
    return json.loads(json.dumps(dataclasses.asdict(spec)))


OPTIONAL_ID_FIELDS = {"challenger_strategy": "honest", "challenger_params": {}, "tolerance_rho": 0.1, "attesters": [],
                      "solver_deadline_s": 0.0, "loss": "cross_entropy", "optimizer_params": {},
                      "schedule": "constant", "schedule_params": {}}
# How a job is executed, not what it computes: a data-parallel run has the trace of the
# one-process run with the same micro-batches, so it is the same job.
EXECUTION_ONLY_FIELDS = ("data_parallel",)


PROGRAM_FIELDS = ("dataset", "model", "optimizer", "schedule", "loss")  # may name plug-in code
PLUGIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def is_plugin_name(value: str) -> bool:
    """``"package.module:attr"``: a plug-in, not a catalog name."""
    return bool(PLUGIN_NAME.match(value))


@functools.lru_cache(maxsize=64)
def hash_module_source(module_name: str) -> str:
    """SHA-256 of a plug-in module's source file, located without importing the module itself."""
    try:
        found = importlib.util.find_spec(module_name)
    except (ImportError, ValueError) as exc:
        raise SpecError(f"plug-in module {module_name!r} cannot be found: {exc}") from None
    if found is None or not found.has_location or not found.origin:
        raise SpecError(f"plug-in module {module_name!r} cannot be found on the Python path")
    return hashlib.sha256(Path(found.origin).read_bytes()).hexdigest()


@functools.cache
def get_torch_release() -> str:
    """torch's release without the local build tag: a CPU and a CUDA wheel of one release run
    the same operators (read from the package metadata: no torch import; once per process, as
    reading it scans every installed distribution: 2 ms, a tenth of a small job's training)."""
    return importlib.metadata.version("torch").split("+")[0]


def compute_program_binding(spec: JobSpec) -> dict[str, Any]:
    """What the job id binds besides the spec's fields: torch's release and the source hash of
    every plug-in module the program names, so two parties cannot run different code, or a
    different torch, under one job id (the execution mode is a spec field already)."""
    code = {name: f"{getattr(spec, name)}@{hash_module_source(getattr(spec, name).partition(':')[0])}"
            for name in PROGRAM_FIELDS if is_plugin_name(getattr(spec, name))}
    return {"torch": get_torch_release(), "code": code}


def compute_job_id(spec: JobSpec) -> JobId:
    fields = {k: v for k, v in spec_to_dict(spec).items()
              if OPTIONAL_ID_FIELDS.get(k, ...) != v and k not in EXECUTION_ONLY_FIELDS}
    fields["program"] = compute_program_binding(spec)
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return JobId("job-" + hashlib.sha256(canonical.encode()).hexdigest()[:12])


def _check_keys(data: dict, cls: type, where: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SpecError(f"{where}: unknown field(s) {unknown}; known: {sorted(known)}")


def spec_from_dict(data: dict[str, Any], base: JobSpec | None = None) -> JobSpec:
    """Build and validate a spec from a dict (e.g. parsed YAML); missing fields come from ``base``."""
    if not isinstance(data, dict):
        raise SpecError(f"job spec must be a mapping, got {type(data).__name__}")
    base = base or get_preset(str(data.get("preset", "default")))
    data = {k: v for k, v in data.items() if k != "preset"}
    _check_keys(data, JobSpec, "job spec")
    fields: dict[str, Any] = dict(data)
    if "economics" in data:
        if not isinstance(data["economics"], dict):
            raise SpecError("job spec: economics must be a mapping")
        moved = sorted({"compute_cost", "verifier_cost"} & set(data["economics"]))
        # Rule: economics is settlement's schedule; the incentive study's declared costs are job fields
        _require(not moved, f"job spec economics: {moved} are top-level fields of the job spec now "
                            f"(the incentive study's declared costs, not settlement terms): move them out of economics")
        _check_keys(data["economics"], EconomicTerms, "job spec economics")
        for name, value in data["economics"].items():
            # Rule: token amounts and basis points are non-negative integers, never floats
            _require(type(value) is int and value >= 0,
                     f"economics.{name} must be a non-negative integer, got {value!r}")
        try:
            fields["economics"] = dataclasses.replace(base.economics, **data["economics"])
        except InvalidTermsError as exc:
            raise SpecError(f"job spec economics: {exc}") from None
    if "solvers" in data:
        if not isinstance(data["solvers"], list | tuple):
            raise SpecError(f"job spec: solvers must be a list, got {data['solvers']!r}")
        fields["solvers"] = tuple(_solver_from(item) for item in data["solvers"])
    if "attesters" in data:
        attesters = data["attesters"]
        # Rule: attesters are a list of party ids
        _require(isinstance(attesters, list | tuple) and all(isinstance(a, str) for a in attesters),
                 f"job spec: attesters must be a list of verifier ids, got {attesters!r}")
        fields["attesters"] = tuple(PartyId(a) for a in attesters)
    try:
        spec = dataclasses.replace(base, **fields)
    except TypeError as exc:
        raise SpecError(f"job spec: {exc}") from exc
    validate_spec(spec)
    return spec


def _solver_from(item: Any) -> SolverSpec:
    if isinstance(item, str):
        return SolverSpec(SolverId(item), item)
    if not isinstance(item, dict) or "solver_id" not in item:
        raise SpecError(f"solver entry {item!r} must be a name or a mapping with 'solver_id'")
    _check_keys(item, SolverSpec, f"solver {item['solver_id']!r}")
    solver_id, strategy, params = item["solver_id"], item.get("strategy", "honest"), item.get("params", {})
    if not isinstance(solver_id, str) or not isinstance(strategy, str) or not isinstance(params, dict):
        raise SpecError(f"solver {solver_id!r}: solver_id and strategy must be strings and params a "
                        f"mapping, got {item!r}")
    return SolverSpec(SolverId(solver_id), strategy, params)


def parse_spec_text(text: str) -> Any:
    """The mapping a YAML or JSON spec holds; a key given twice at any depth is a ``SpecError``
    (a reader and a writer of the same file must not see two different specs)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            keys = [self.construct_object(key, deep=True) for key, _ in node.value]
            duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
            if duplicates:
                raise SpecError(f"key(s) {duplicates} given more than once ({node.start_mark})")
            return super().construct_mapping(node, deep)

    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise SpecError(f"not YAML or JSON: {exc}") from exc


def load_spec(path: str | Path) -> JobSpec:
    """Read a job spec from a YAML or JSON file."""
    path = Path(path)
    try:
        data = parse_spec_text(path.read_text())
    except (OSError, SpecError) as exc:
        raise SpecError(f"job spec {str(path)!r} cannot be read: {exc}") from exc
    try:
        return spec_from_dict(data)
    except SpecError as exc:
        raise SpecError(f"job spec {str(path)!r}: {exc}") from exc


# A name that becomes part of a path or a ledger account: letters, digits, '_', '.', '-', at most
# 64 characters, starting with a letter or digit, and never '..' (no path can climb out of a job).
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SEED_RANGE = range(0, 2**63)  # seeds are 8-byte big-endian in every derivation
FLOAT_FIELDS = ("lr", "momentum", "weight_decay", "tolerance_rho", "spot_check_probability",
                "party_time_budget_s", "solver_deadline_s")


def is_safe_identifier(value: object) -> bool:
    """Whether ``value`` may name a job, a party or a solver (and so a directory or an account)."""
    return isinstance(value, str) and IDENTIFIER.fullmatch(value) is not None and ".." not in value


def get_unsafe_identifiers(spec: JobSpec) -> list[str]:
    """``field=value`` of every name in ``spec`` that is not a safe identifier."""
    names = {"name": spec.name, "submitter": spec.submitter, "verifier": spec.verifier}
    names.update({f"solvers[{i}].solver_id": s.solver_id for i, s in enumerate(spec.solvers)})
    names.update({f"attesters[{i}]": a for i, a in enumerate(spec.attesters)})
    return [f"{field}={value!r}" for field, value in names.items() if not is_safe_identifier(value)]


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SpecError(message)


def is_of_type(value: Any, hint: Any) -> bool:
    """Whether ``value`` has the declared type ``hint`` (ints are not bools; floats accept ints)."""
    hint = getattr(hint, "__supertype__", hint)  # NewType ids are their base type
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, hint) and not get_type_errors(value)
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return isinstance(value, str)  # which strings are members is a rule of its own, with the choices
    if origin is tuple:
        return isinstance(value, tuple) and all(is_of_type(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if hint is float:
        return type(value) in (int, float)
    return type(value) is hint


def get_type_errors(obj: Any, prefix: str = "") -> list[str]:
    """``field=value`` of every field (nested ones dotted) whose value is not of its declared type."""
    hints, errors = typing.get_type_hints(type(obj)), []
    for f in dataclasses.fields(obj):
        value, hint = getattr(obj, f.name), hints[f.name]
        if dataclasses.is_dataclass(hint) and isinstance(value, hint):
            errors += get_type_errors(value, f"{prefix}{f.name}.")
        elif not is_of_type(value, hint):
            name = getattr(getattr(hint, "__supertype__", hint), "__name__", str(hint))
            errors.append(f"{prefix}{f.name}={value!r} is not {'an integer' if name == 'int' else name}")
    return errors


def validate_spec(spec: JobSpec) -> None:
    """Reject inconsistent specs before anything is trained, written or staked."""
    # Every field has its declared type (checked first: the rules below compare values)
    errors = get_type_errors(spec)
    _require(not errors, f"job spec: wrong types: {'; '.join(errors)}")
    # Names become paths and accounts: each must be a safe identifier
    unsafe = get_unsafe_identifiers(spec)
    _require(not unsafe, f"job spec: unsafe names {'; '.join(unsafe)}: a name must match "
                         f"{IDENTIFIER.pattern} and hold no '..'")
    # Every number is finite; the seed fits the 8 bytes every derivation encodes it in
    infinite = [f"{name}={getattr(spec, name)!r}" for name in FLOAT_FIELDS if not math.isfinite(getattr(spec, name))]
    _require(not infinite, f"job spec: fields must be finite numbers: {'; '.join(infinite)}")
    _require(spec.seed in SEED_RANGE, f"seed must be in 0..2**63-1, got {spec.seed}")
    # Program rules
    _require(spec.steps >= 1, f"steps must be >= 1, got {spec.steps}")
    _require(1 <= spec.checkpoint_interval <= spec.steps,
             f"checkpoint_interval k={spec.checkpoint_interval} must be in 1..T={spec.steps}")
    _require(spec.steps % spec.checkpoint_interval == 0,
             f"steps T={spec.steps} must be a multiple of checkpoint_interval k={spec.checkpoint_interval}")
    _require(spec.batch_size >= 1, f"batch_size must be >= 1, got {spec.batch_size}")
    _require(spec.micro_batches >= 1 and spec.batch_size % spec.micro_batches == 0,
             f"micro_batches={spec.micro_batches} must be >= 1 and divide batch_size={spec.batch_size}")
    _require(not spec.data_parallel or spec.micro_batches >= 2,
             f"data_parallel needs micro_batches >= 2 (one process each), got {spec.micro_batches}")
    _require(spec.num_shards >= 1, f"num_shards must be >= 1, got {spec.num_shards}")
    _require(spec.lr > 0, f"lr must be > 0, got {spec.lr}")
    _require(0 <= spec.momentum < 1, f"momentum must be in [0, 1), got {spec.momentum}")
    _require(spec.threads >= 1, f"threads must be >= 1, got {spec.threads}")
    _require(spec.mode in MODES, f"mode {spec.mode!r} is not one of {MODES}")
    _require(spec.tolerance_rho > 0, f"tolerance_rho must be > 0, got {spec.tolerance_rho}")
    for name, value, catalog in (("optimizer", spec.optimizer, OPTIMIZERS), ("schedule", spec.schedule, SCHEDULES),
                                 ("loss", spec.loss, LOSSES)):
        _require(isinstance(value, str) and (value in catalog or is_plugin_name(value)),
                 f"{name} {value!r} is not one of {catalog} or a plug-in 'package.module:attr'")
    for name in ("model_params", "dataset_params", "optimizer_params", "schedule_params"):
        _require(isinstance(getattr(spec, name), dict), f"{name} must be a mapping, got {getattr(spec, name)!r}")
    _require(spec.device in ("auto", "cpu", "cuda"), f"device {spec.device!r} is not auto/cpu/cuda")
    _require(spec.hash_name in HASH_NAMES, f"hash_name {spec.hash_name!r} is not one of {HASH_NAMES}")
    # Verification rules
    _require(0.0 <= spec.spot_check_probability <= 1.0,
             f"spot_check_probability must be in [0, 1], got {spec.spot_check_probability}")
    _require(spec.spot_check_policy in POLICIES,
             f"spot_check_policy {spec.spot_check_policy!r} is not one of {POLICIES}")
    _require(2 <= spec.dissection_arity <= 40,
             f"dissection_arity must be in 2..40 (Arbitrum uses 40), got {spec.dissection_arity}")
    _require(spec.intervals_per_check >= 1, f"intervals_per_check must be >= 1, got {spec.intervals_per_check}")
    _require(spec.party_time_budget_s >= 0, f"party_time_budget_s must be >= 0 (0: derived), got "
                                            f"{spec.party_time_budget_s}")
    _require(spec.solver_deadline_s >= 0, f"solver_deadline_s must be >= 0 (0: derived), got {spec.solver_deadline_s}")
    _require(isinstance(spec.challenger_strategy, str) and spec.challenger_strategy != "",
             f"challenger_strategy must be a strategy name, got {spec.challenger_strategy!r}")
    _require(isinstance(spec.challenger_params, dict),
             f"challenger_params must be a mapping, got {spec.challenger_params!r}")
    # Economic rules: the one schedule (EconomicTerms) checks its own terms when it is built
    _require(spec.compute_cost > 0, f"compute_cost must be > 0 (training costs something), got {spec.compute_cost}")
    _require(spec.verifier_cost >= 0, f"verifier_cost must be >= 0, got {spec.verifier_cost}")
    # Parties
    _require(len(spec.solvers) >= 1, "a job needs at least one solver")
    ids = [s.solver_id for s in spec.solvers]
    _require(len(set(ids)) == len(ids), f"solver ids must be unique, got {ids}")
    committee = list(get_committee(spec))
    # Rule: each verifier of the committee is one party, paid one fee and committing one coin
    _require(len(set(committee)) == len(committee), f"verifier ids must be distinct, got verifier "
                                                     f"{spec.verifier!r} and attesters {list(spec.attesters)}")
    clash = {spec.submitter, *committee} & set(ids)
    _require(not clash, f"party ids {sorted(clash)} are used both as solver and submitter/verifier")
    # Rule: "referee" is the party that signs rulings (``verification.job.REFEREE``): nobody else's name
    taken = {REFEREE_ID} & {*ids, spec.submitter, *committee}
    _require(not taken, f"party id {REFEREE_ID!r} is the referee's; a solver, submitter or verifier cannot use it")
