"""The overhead report: one pytest-benchmark JSON in, ``report.md`` and PNG plots out.

    python -m benchmarks.report BENCH_JSON OUT_DIR

Terms
-----
entry
    One benchmark of the JSON: its group, test name, ``extra_info`` (its *info*) and the median of
    its rounds in seconds. Medians, not means: timings on a machine shared with other work have
    long tails.
ratio
    The quotient of two medians of the same JSON (one run, one machine, one load). Every overhead
    in the report is one, and the report names both of its terms.
honest-case overhead (docs/design.md §1.4)
    For a job of ``T`` steps with checkpoint interval ``k`` (``n = T/k + 1`` checkpoints):
    ``(n * commit[checkpoint] + commit[job]) / (T * train-step)``, where ``commit[checkpoint]`` is
    the state root of one checkpoint and ``commit[job]`` the trace root over ``n`` roots plus one
    BLS signature. Its long-job limit is ``commit[checkpoint] / (k * train-step)``; *with storage*
    adds ``n * commit[store]`` (writing each checkpoint to zarr) to the numerator.
paired ratio
    Two entries of one group that differ only in one info key (``mode``: reproducible / native,
    ``backend``: py_ecc / arkworks) and agree on the test and every other info value.

The tables come from pure functions of the parsed entries (``compute_*``); plots and markdown
are rendered from those tables; only :func:`write_report` touches the file system. Groups the
report does not know still appear, entry by entry, in its last section.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.paired import is_measurable_setting  # noqa: E402
from benchmarks.schemes import KAIZEN_VGG11, ZkProvingModel, compute_zk_prover_seconds  # noqa: E402
from verification.spec import JobSpec, get_preset  # noqa: E402

REPORT_NAME = "report.md"


class ReportError(ValueError):
    """A benchmark JSON that cannot be read as pytest-benchmark output."""


# -- parsing -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    group: str
    name: str  # with parameters, e.g. "test_train_step[mlp-64]"
    test: str  # the test function, e.g. "test_train_step"
    info: Mapping[str, Any]
    seconds: float  # median of the rounds
    rounds: int


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_entry(raw: Any) -> Entry | None:
    """One benchmark of the JSON, or ``None`` when it carries no timing (e.g. it errored)."""
    stats = raw.get("stats") if isinstance(raw, dict) else None
    if not isinstance(stats, dict) or not is_number(stats.get("median")):
        return None
    name = str(raw.get("name") or "?")
    info = raw.get("extra_info") if isinstance(raw.get("extra_info"), dict) else {}
    rounds = stats.get("rounds") if is_number(stats.get("rounds")) else 0
    return Entry(str(raw.get("group") or "ungrouped"), name, name.split("[")[0], dict(info),
                 float(stats["median"]), int(rounds))


def parse_entries(data: Any) -> tuple[Entry, ...]:
    """Every timed benchmark of a pytest-benchmark JSON document."""
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ReportError("benchmark JSON has no 'benchmarks' list; expected the file written by "
                          "pytest --benchmark-json=PATH")
    return tuple(e for e in (parse_entry(raw) for raw in data["benchmarks"]) if e is not None)


def select(entries: Iterable[Entry], group: str, **match: Any) -> list[Entry]:
    """Entries of ``group`` whose info has every ``match`` value."""
    return [e for e in entries if e.group == group and all(e.info.get(k) == v for k, v in match.items())]


def get_int(entry: Entry, key: str) -> int | None:
    value = entry.info.get(key)
    return int(value) if is_number(value) and float(value).is_integer() else None


def get_model_key(entry: Entry) -> tuple[str, int, str] | None:
    """``(model, width, mode)`` of a benchmark of one program, ``None`` when its info lacks them."""
    model, width = entry.info.get("model"), get_int(entry, "width")
    if not isinstance(model, str) or width is None:
        return None
    return model, width, str(entry.info.get("mode", "exact"))


def index_by_model(entries: Iterable[Entry]) -> dict[tuple[str, int, str], Entry]:
    return {key: e for e in entries if (key := get_model_key(e)) is not None}


# -- honest-case overhead ------------------------------------------------------------------------
@dataclass(frozen=True)
class OverheadRow:
    model: str
    width: int
    params: int | None  # number of model parameters, when the train-step entry says
    mode: str
    backend: str
    T: int
    k: int
    checkpoints: int
    step_s: float
    checkpoint_s: float
    job_s: float
    store_s: float | None
    ratio: float  # (n * checkpoint + job) / (T * step)
    limit_ratio: float  # checkpoint / (k * step)
    store_ratio: float | None  # (n * (checkpoint + store) + job) / (T * step)


def compute_overhead_row(step: Entry, checkpoint: Entry, job: Entry, store: Entry | None) -> OverheadRow | None:
    """The honest-case overhead of ``job``'s (T, k) for the model of ``step``; None without T or k."""
    T, k = get_int(job, "T"), get_int(job, "k")
    if not T or not k:
        return None
    model, width, mode = get_model_key(step)
    n = T // k + 1
    training = T * step.seconds
    store_s = None if store is None else store.seconds
    store_ratio = None if store is None else (n * (checkpoint.seconds + store.seconds) + job.seconds) / training
    return OverheadRow(model, width, get_int(step, "params"), mode, str(job.info.get("backend", "?")), T, k, n,
                       step.seconds,
                       checkpoint.seconds, job.seconds, store_s,
                       (n * checkpoint.seconds + job.seconds) / training,
                       checkpoint.seconds / (k * step.seconds), store_ratio)


def compute_honest_overhead(entries: Sequence[Entry]) -> list[OverheadRow]:
    """Every (model, width) with a train-step and a checkpoint commit, times every job commit."""
    steps = index_by_model(select(entries, "train-step"))
    checkpoints = index_by_model(select(entries, "commit", part="checkpoint"))
    stores = index_by_model(select(entries, "commit", part="store"))
    jobs = select(entries, "commit", part="job")
    rows = [compute_overhead_row(steps[key], checkpoints[key], job, stores.get(key))
            for key in sorted(steps.keys() & checkpoints.keys()) for job in jobs]
    return sorted((r for r in rows if r is not None), key=lambda r: (r.model, r.width, r.backend, r.k))


# -- spot checks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpotRow:
    policy: str
    m: int | None
    n: int | None
    detection: float | None
    seconds: float
    replicate_s: float | None
    ratio: float | None  # seconds / replicate_s


def compute_spot_checks(entries: Sequence[Entry]) -> list[SpotRow]:
    """Each spot check next to the ``replicate`` check of the same job (same T, k, model, width)."""
    def job(e: Entry) -> tuple:
        return tuple(str(e.info.get(key)) for key in ("model", "width", "T", "k"))

    checks = select(entries, "spot-check")
    replicate = {job(e): e for e in checks if e.info.get("policy") == "replicate"}
    rows = []
    for e in checks:
        base = replicate.get(job(e))
        detection = e.info.get("detection")
        rows.append(SpotRow(str(e.info.get("policy", e.test)), get_int(e, "m"), get_int(e, "n"),
                            float(detection) if is_number(detection) else None, e.seconds,
                            None if base is None else base.seconds,
                            None if base is None else e.seconds / base.seconds))
    return sorted(rows, key=lambda r: (r.detection is None, r.detection or 0.0, r.policy))


# -- disputes vs full re-execution ---------------------------------------------------------------
@dataclass(frozen=True)
class DisputeRow:
    group: str
    name: str
    series: str  # the test and the settings that tell its lines apart, e.g. "test_dispute (arity=2)"
    T: int
    seconds: float
    replication_s: float
    ratio: float  # seconds / replication_s
    baseline: str  # how replication_s was obtained


def compute_replication_baseline(entry: Entry, replications: Mapping[tuple, Entry],
                                 steps: Mapping[tuple[str, int, str], Entry]) -> tuple[float, str] | None:
    """Full re-execution at the entry's T: measured at the same (T, model, width) if the JSON has it,
    else ``T * train-step`` of the entry's model (default: the default preset's)."""
    T = get_int(entry, "T")
    measured = replications.get((T, entry.info.get("model"), entry.info.get("width")))
    if measured is not None:
        return measured.seconds, f"measured ({measured.group}: {measured.name})"
    spec = get_preset("default")
    key = get_model_key(entry) or (spec.model, int(spec.model_params["hidden"]), spec.mode)
    step = steps.get(key)
    if step is None:
        return None
    return T * step.seconds, f"T x train-step ({step.name})"


# Settings that split one test's entries into separate lines of a plot against T.
SERIES_KEYS = ("arity", "part", "model", "width", "mode", "threads", "backend", "policy")


def is_replication(entry: Entry) -> bool:
    return any(str(entry.info.get(key)) in ("replication", "replicate", "full-replication")
               for key in ("scheme", "policy", "role", "baseline"))


def compute_dispute_costs(entries: Sequence[Entry]) -> list[DisputeRow]:
    """Each dispute or referee entry with a ``T`` next to full re-execution of the same job."""
    steps = index_by_model(select(entries, "train-step"))
    candidates = [e for g in ("dispute", "referee") for e in select(entries, g) if get_int(e, "T")]
    replications = {(get_int(e, "T"), e.info.get("model"), e.info.get("width")): e
                    for e in entries if is_replication(e) and get_int(e, "T")}
    candidates = [e for e in candidates if not is_replication(e)]
    varying = get_varying_keys(candidates)
    rows = []
    for e in candidates:
        baseline = compute_replication_baseline(e, replications, steps)
        if baseline is not None:
            series = describe_rest(e, "T", keys=varying[e.test] & set(SERIES_KEYS))
            rows.append(DisputeRow(e.group, e.name, series, get_int(e, "T"), e.seconds, baseline[0],
                                   e.seconds / baseline[0], baseline[1]))
    return sorted(rows, key=lambda r: (r.group, natural_key(r.series), r.T))


# -- paired ratios (reproducible / native, py_ecc / arkworks) -------------------------------------
@dataclass(frozen=True)
class PairRow:
    group: str
    label: str
    numerator_s: float
    denominator_s: float
    ratio: float
    unmeasurable: str = ""  # why this machine could not time it (benchmarks.paired, *measurable*)


def get_unmeasurable(*entries: Entry) -> str:
    """Why an entry's timing is not the work's (threads or processes on oversubscribed cores), or ''."""
    for e in entries:
        workers = (get_int(e, "threads") or 1) * (get_int(e, "world_size") or 1)
        load = e.info.get("load")
        peak = max(load) if isinstance(load, list) and load and all(map(is_number, load)) else None
        if not is_measurable_setting(workers, peak, get_int(e, "cores")):
            return (f"not measurable here: {workers} workers on {e.info.get('cores', '?')} cores at load "
                    f"{'?' if peak is None else f'{peak:.1f}'}")
    return ""


def describe_rest(entry: Entry, key: str, keys: Iterable[str] | None = None,
                  ignore: Iterable[str] = ()) -> str:
    """The test and its info values but ``key`` and ``ignore`` (only ``keys``, if given): what two
    paired entries must share, or, with ``keys``, a short label."""
    shown = sorted(k for k in entry.info if k != key and k not in ignore and k not in RUN_FACTS
                   and (keys is None or k in keys))
    rest = ", ".join(f"{k}={entry.info[k]}" for k in shown)
    return f"{entry.test} ({rest})" if rest else entry.test


def natural_key(text: str) -> list:
    """Sort key that orders the numbers inside ``text`` by value (``k=2`` before ``k=10``)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


def get_varying_keys(entries: Sequence[Entry]) -> dict[str, set[str]]:
    """Per test: the info keys whose values differ between its entries (what tells them apart)."""
    values: dict[str, dict[str, set[str]]] = {}
    for e in entries:
        for k, v in e.info.items():
            values.setdefault(e.test, {}).setdefault(k, set()).add(json.dumps(v, sort_keys=True, default=str))
    return {test: {k for k, seen in keys.items() if len(seen) > 1} for test, keys in values.items()}


def get_seconds(entry: Entry, value_key: str | None) -> float | None:
    """The entry's median, or the seconds it recorded under ``value_key`` in its info."""
    if value_key is None:
        return entry.seconds
    value = entry.info.get(value_key)
    return float(value) if is_number(value) and value > 0 else None


def compute_pairs(entries: Sequence[Entry], group: str, key: str, numerator: Any, denominator: Any,
                  ignore: Iterable[str] = (), value_key: str | None = None) -> list[PairRow]:
    """``numerator / denominator`` for every pair of ``group`` entries differing only in ``key``
    (and in the ``ignore`` keys: values a benchmark measured rather than a setting). The times
    compared are the medians, or the seconds each entry recorded in ``info[value_key]``."""
    candidates = [e for e in select(entries, group) if e.info.get(key) in (numerator, denominator)]
    varying = {test: keys - set(ignore) - set(DERIVED_INFO)
               for test, keys in get_varying_keys(candidates).items()}
    sides: dict[str, dict[Any, Entry]] = {}
    for e in candidates:
        sides.setdefault(describe_rest(e, key, ignore=ignore), {})[e.info[key]] = e
    pairs = [pair for _, pair in sorted(sides.items(), key=lambda item: natural_key(item[0])) if len(pair) == 2]
    rows = []
    for pair in pairs:
        top, bottom = get_seconds(pair[numerator], value_key), get_seconds(pair[denominator], value_key)
        if top is not None and bottom is not None:
            label = describe_rest(pair[numerator], key, varying[pair[numerator].test])
            rows.append(PairRow(group, label, top, bottom, top / bottom,
                                get_unmeasurable(pair[numerator], pair[denominator])))
    return rows


# Info keys that data-parallel benchmarks fill with measurements (benchmarks/test_bench_distributed.py).
MEASURED_INFO = ("train_s", "step_s")
# Info keys that referee benchmarks fill with what the ruling counted (benchmarks/test_bench_dispute.py).
REFEREE_MEASURED_INFO = ("referee_ops", "schedule_ops")
# Info keys that follow from others (model and width; T and k): matched on, left out of labels.
DERIVED_INFO = ("params", "state_bytes", "checkpoints")
# Info keys every benchmark records about the run rather than its setting (benchmarks/conftest.py).
RUN_FACTS = ("load", "cores", "paired")


# -- schemes side by side ------------------------------------------------------------------------
@dataclass(frozen=True)
class SchemeRow:
    scheme: str
    setting: str
    seconds: float
    ratio: float  # seconds / training of the same job
    steps_executed: int | None
    detection: float | None
    catches_lazy: bool | None
    measured: bool  # False: a cost model built from published figures


SCHEME_SETTING_KEYS = ("Q", "m", "p", "rounds", "operator")


def describe_scheme(row: SchemeRow) -> str:
    """A scheme and its measured setting, e.g. ``pol-top-q (Q=2)``; a model by its name alone."""
    return f"{row.scheme} ({row.setting})" if row.setting and row.measured else row.scheme


def compute_scheme_row(entry: Entry, training: Entry) -> SchemeRow:
    setting = ", ".join(f"{k}={entry.info[k]}" for k in SCHEME_SETTING_KEYS if k in entry.info)
    detection, lazy = entry.info.get("detection"), entry.info.get("catches_lazy")
    return SchemeRow(str(entry.info.get("scheme", entry.test)), setting, entry.seconds,
                     entry.seconds / training.seconds, get_int(entry, "steps_executed"),
                     float(detection) if is_number(detection) else None,
                     lazy if isinstance(lazy, bool) else None, True)


def compute_zk_rows(training: Entry, model: ZkProvingModel) -> list[SchemeRow]:
    """The zero-knowledge scheme on the same job, from the model's published per-iteration cost."""
    T = get_int(training, "T") or 0
    prover = compute_zk_prover_seconds(model, T)
    return [SchemeRow("zk-proof (prover, model)", model.workload, prover, prover / training.seconds,
                      T, 1.0, True, False),
            SchemeRow("zk-proof (verifier, model)", model.workload, model.verifier_s,
                      model.verifier_s / training.seconds, 0, 1.0, True, False)]


def compute_schemes(entries: Sequence[Entry], model: ZkProvingModel = KAIZEN_VGG11) -> list[SchemeRow]:
    """Every ``schemes`` entry as a multiple of the ``training`` entry of the same run, then the ZK model."""
    schemes = select(entries, "schemes")
    training = next((e for e in schemes if e.info.get("scheme") == "training"), None)
    if training is None:
        return []
    rows = [compute_scheme_row(e, training) for e in schemes]
    return rows + compute_zk_rows(training, model)


# -- paired measurements (benchmarks.paired) -----------------------------------------------------
# Goals of the overhead study, per (group, ratio): what "cheap enough" means for each headline.
GOALS: dict[tuple[str, str], tuple[str, float]] = {
    ("overhead", "commit"): ("≤", 0.01),  # hash + Merkle + sign of a whole job, over its training
    ("overhead", "commit+storage"): ("≤", 0.10),
    ("in-situ", "overhead (wall)"): ("≤", 0.10),  # all of it, as the honest solver's job takes longer
    ("referee", "ruling/step"): ("≤", 0.5),
    ("repro-ops", "reproducible/native"): ("≤", 1.5),
}
LARGE_STATE_BYTES = 2**20  # from here the state root should run at ≥ 0.8 of raw SHA-256


def get_goal(group: str, ratio: str, info: Mapping[str, Any]) -> tuple[str, float] | None:
    """The goal a paired ratio is held to, if any."""
    if (group, ratio) == ("repro-ops", "reproducible/native") and info.get("op") == "matmul":
        return ("≤", 1.3)  # a product alone: the 1024^3 goal (a whole step's is 1.5x)
    if (group, ratio) == ("commit", "raw/state_root"):
        return ("≥", 0.8) if (get_int_value(info.get("bytes")) or 0) >= LARGE_STATE_BYTES else ("≥", 0.5)
    return GOALS.get((group, ratio))


def get_int_value(value: Any) -> int | None:
    return int(value) if is_number(value) and float(value).is_integer() else None


@dataclass(frozen=True)
class PairedRow:
    """One ratio of one paired benchmark: its spread over rounds, the load, and its goal."""

    group: str
    case: str
    ratio: str
    median: float
    low: float
    high: float
    rounds: int
    load: tuple[float, float]
    cores: int
    params: int | None
    goal: tuple[str, float] | None
    unmeasurable: str = ""
    repeat: int = 1  # calls of each side per round (``benchmarks.paired``, *repeat*)

    @property
    def verdict(self) -> str:
        if self.goal is None or self.unmeasurable:
            return ""
        sign, bound = self.goal
        return "met" if (self.median <= bound if sign == "≤" else self.median >= bound) else "**missed**"


def parse_paired(entry: Entry) -> list[PairedRow]:
    """The rows of one entry's ``info["paired"]`` (none when it has none, or a malformed one)."""
    paired = entry.info.get("paired")
    if not isinstance(paired, dict) or not isinstance(paired.get("ratios"), dict):
        return []
    load = paired.get("load") if isinstance(paired.get("load"), list) else []
    load = tuple(float(x) for x in load[:2] if is_number(x)) or (math.nan, math.nan)
    cores, threads = get_int_value(paired.get("cores")) or 0, get_int_value(paired.get("threads")) or 1
    unmeasurable = "" if paired.get("measurable", True) else \
        f"not measurable here: {threads} threads on {cores} cores at load {max(load):.1f}"
    case = str(entry.info.get("case", entry.name))
    return [PairedRow(entry.group, case, name, float(v["median"]), float(v["min"]), float(v["max"]),
                      get_int_value(paired.get("rounds")) or 0, (load[0], load[-1]), cores,
                      get_int(entry, "params"), get_goal(entry.group, name, entry.info), unmeasurable,
                      get_int_value(paired.get("repeat")) or 1)
            for name, v in paired["ratios"].items()
            if isinstance(v, dict) and all(is_number(v.get(k)) for k in ("median", "min", "max"))]


def compute_paired(entries: Sequence[Entry]) -> list[PairedRow]:
    return [row for e in entries for row in parse_paired(e)]


def format_goal(goal: tuple[str, float] | None) -> str:
    return "" if goal is None else f"{goal[0]} {format_ratio(goal[1])}"


def render_paired(rows: Sequence[PairedRow]) -> str:
    table = markdown_table(
        ["group", "case", "ratio", "median", "min – max", "rounds", "load (cores)", "goal", ""],
        [[r.group, r.case, r.ratio, r.unmeasurable or format_ratio(r.median),
          "" if r.unmeasurable else f"{format_ratio(r.low)} – {format_ratio(r.high)}",
          r.rounds if r.repeat == 1 else f"{r.rounds} × {r.repeat}",
          f"{r.load[0]:.1f} → {r.load[1]:.1f} ({r.cores})", format_goal(r.goal), r.verdict] for r in rows])
    return ("Each ratio is computed per round from times taken back to back (the sides of a round "
            "alternate, in rotated order) and shown as the median over rounds with its range; `7 × 16` "
            "rounds: each side ran 16 times back to back per round, timed as its mean call; the load "
            "is the 1-minute load average before and after. `overhead` is a whole job of T steps with a "
            "checkpoint every k (benchmarks/test_bench_paired.py): hash = (T/k + 1) state roots, merkle = "
            "the trace root, sign = one BLS signature, storage = (T/k + 1) checkpoint writes, each over "
            f"the job's training time.\n\n{table}")


def plot_overhead_parts(rows: Sequence[PairedRow]) -> bytes:
    """The honest overhead of each model split into its parts, stacked, models by size."""
    parts = ("hash", "merkle", "sign", "storage")
    cases = sorted({(r.params or 0, r.case) for r in rows if r.group == "overhead" and r.ratio in parts})
    value = {(r.case, r.ratio): r.median for r in rows if r.group == "overhead"}

    def draw(ax):
        left = [0.0] * len(cases)
        for part in parts:
            widths = [value.get((case, part), 0.0) * 100 for _, case in cases]
            ax.barh(range(len(cases)), widths, left=left, label=part)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for i, total in enumerate(left):
            ax.text(total, i, f" {total:.2g} %", va="center", fontsize=7)
        ax.set_yticks(range(len(cases)), [f"{case}\n{params:,} params" for params, case in cases], fontsize=7)
        for goal, style in ((1, ":"), (10, "--")):
            ax.axvline(goal, color="black", lw=0.8, ls=style)
        ax.set_xlim(0, max([*left, 10.0]) * 1.15)
        ax.set(xlabel="% of the job's training time (dotted: 1 %, dashed: 10 %)",
               title="Honest overhead by part, models by size")
        ax.legend(fontsize=7, loc="upper right")
    return figure_png([draw], (7.2, 1.4 + 0.55 * len(cases)))


def compute_paired_headlines(rows: Sequence[PairedRow]) -> list[str]:
    return [f"{r.group} {r.ratio}, {r.case}: {r.unmeasurable or format_ratio(r.median)} "
            f"[{format_ratio(r.low)} – {format_ratio(r.high)}] (goal {format_goal(r.goal)}: "
            f"{r.verdict.strip('*') or '–'}; load {max(r.load):.1f}, paired)"
            for r in rows if r.goal is not None]


# -- headline numbers ----------------------------------------------------------------------------
def get_default_setting(spec: JobSpec | None = None) -> tuple[str, int, int]:
    """``(model, width, k)`` of the default preset: the job the headlines are about."""
    spec = spec or get_preset("default")
    return spec.model, int(spec.model_params.get("hidden", 0)), spec.checkpoint_interval


def compute_headlines(overhead: Sequence[OverheadRow], disputes: Sequence[DisputeRow],
                      spots: Sequence[SpotRow], schemes: Sequence[SchemeRow],
                      default: tuple[str, int, int]) -> list[str]:
    """One sentence per headline figure that the JSON can support."""
    model, width, k = default
    lines = [f"honest-case overhead, {r.model} width {r.width}, T={r.T}, k={r.k}, BLS {r.backend}: "
             f"{format_ratio(r.ratio)} of training (long-job limit {format_ratio(r.limit_ratio)})"
             for r in overhead if (r.model, r.width, r.k) == (model, width, k)]
    for key in sorted({(d.group, d.series) for d in disputes}, key=lambda key: natural_key(" ".join(key))):
        largest = max((d for d in disputes if (d.group, d.series) == key), key=lambda d: d.T)
        lines.append(f"{key[0]} {key[1]} at the largest T={largest.T}: {format_ratio(largest.ratio)} "
                     f"of full re-execution")
    cheapest = [s for s in spots if s.policy != "replicate" and s.ratio is not None]
    if cheapest:
        s = min(cheapest, key=lambda s: s.seconds)
        lines.append(f"cheapest spot check (m={s.m} of n={s.n}, detection {s.detection:.2f}): "
                     f"{format_ratio(s.ratio)} of replication")
    lines += [f"scheme {describe_scheme(r)}: {format_ratio(r.ratio)} of training the same job"
              for r in schemes if r.measured and r.scheme != "training"]
    return lines


# -- formatting ----------------------------------------------------------------------------------
def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds >= 3600.0:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60.0:
        return f"{seconds / 60:.3g} min"
    if seconds >= 1.0:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def format_ratio(ratio: float | None) -> str:
    """Below 1 as a percentage, from 1 on as a multiple."""
    if ratio is None:
        return "–"
    return f"{ratio * 100:.2g} %" if ratio < 1 else f"{ratio:.3g}×"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def format_info(info: Mapping[str, Any], limit: int = 160) -> str:
    text = ", ".join(f"{k}={v}" for k, v in sorted(info.items()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- plots ---------------------------------------------------------------------------------------
def figure_png(draws: Sequence[Callable[[Any], None]], size: tuple[float, float] = (6.4, 3.8)) -> bytes:
    """Render one panel per ``draws`` callable (each draws one matplotlib axes) to PNG bytes."""
    fig, axes = plt.subplots(1, len(draws), figsize=size, dpi=110, squeeze=False)
    try:
        for draw, ax in zip(draws, axes[0], strict=True):
            draw(ax)
            ax.grid(True, which="major", alpha=0.3)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def plot_overhead(rows: Sequence[OverheadRow], default_k: int) -> bytes:
    """Overhead vs k, one panel per BLS backend; then overhead vs model parameters at ``default_k``."""
    def vs_interval(backend: str) -> Callable[[Any], None]:
        def draw(ax):
            for key in sorted({(r.model, r.width) for r in rows if r.backend == backend}):
                line = sorted((r for r in rows if (r.model, r.width, r.backend) == (*key, backend)),
                              key=lambda r: r.k)
                ax.plot([r.k for r in line], [r.ratio for r in line], marker="o", lw=1,
                        label=f"{key[0]} w={key[1]}")
            ax.set(xscale="log", yscale="log", xlabel="checkpoint interval k (steps)",
                   ylabel="(hash + Merkle + sign) / training", title=f"BLS {backend}, T={rows[0].T}")
            ax.legend(fontsize=6, ncol=2)
        return draw

    def vs_size(ax):
        for model, backend in sorted({(r.model, r.backend) for r in rows}):
            points = sorted((r for r in rows if (r.model, r.backend, r.k) == (model, backend, default_k)
                             and r.params), key=lambda r: r.params)
            ax.plot([r.params for r in points], [r.ratio for r in points], marker="o", lw=1,
                    ls="-" if backend != "py_ecc" else "--", label=f"{model}, {backend}")
        ax.set(xscale="log", yscale="log", xlabel="model parameters", ylabel="overhead",
               title=f"vs model size, k={default_k}")
        ax.legend(fontsize=6)

    panels = [vs_interval(b) for b in sorted({r.backend for r in rows})]
    if any(r.params and r.k == default_k for r in rows):
        panels.append(vs_size)
    return figure_png(panels, (4.6 * len(panels), 4.0))


def plot_disputes(rows: Sequence[DisputeRow]) -> bytes:
    def draw(ax):
        for key in sorted({(r.group, r.series) for r in rows}, key=lambda key: natural_key(" ".join(key))):
            line = sorted((r for r in rows if (r.group, r.series) == key), key=lambda r: r.T)
            ax.plot([r.T for r in line], [r.ratio for r in line], marker="o", lw=1, label=f"{key[0]}: {key[1]}")
        ax.set(xscale="log", yscale="log", xlabel="job length T (steps)", ylabel="cost / full re-execution",
               title="Dispute cost vs full re-execution")
        ax.legend(fontsize=7)
    return figure_png([draw])


def plot_spot_checks(rows: Sequence[SpotRow]) -> bytes:
    def draw(ax):
        points = [r for r in rows if r.detection is not None and r.ratio is not None]
        for policy in sorted({r.policy for r in points}):
            line = [r for r in points if r.policy == policy]
            ax.plot([r.detection for r in line], [r.ratio for r in line], marker="o", lw=1, label=policy)
        ax.set(yscale="log", xlabel="detection probability of one bad interval",
               ylabel="cost / replication", title="Spot-check cost vs detection")
        ax.legend(fontsize=8)
    return figure_png([draw])


def plot_pairs(rows: Sequence[PairRow], title: str, xlabel: str) -> bytes:
    def draw(ax):
        labels = [f"{r.group}: {r.label}" for r in rows]
        ax.barh(range(len(rows)), [r.ratio for r in rows], color="tab:blue")
        for i, r in enumerate(rows):
            ax.text(r.ratio, i, f" {format_ratio(r.ratio)}", va="center", fontsize=7)
        ax.set_yticks(range(len(rows)), [s if len(s) <= 56 else s[:55] + "…" for s in labels], fontsize=7)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_xlim(right=max(r.ratio for r in rows) * 10)
        ax.set(xscale="log", xlabel=xlabel, title=title)
    return figure_png([draw], (7.2, 1.2 + 0.28 * len(rows)))


def plot_schemes(rows: Sequence[SchemeRow]) -> bytes:
    def draw(ax):
        colors = ["tab:blue" if r.measured else "tab:gray" for r in rows]
        ax.barh(range(len(rows)), [r.ratio for r in rows], color=colors)
        for i, r in enumerate(rows):
            ax.text(r.ratio, i, f" {format_ratio(r.ratio)}" + ("" if r.measured else " (model)"),
                    va="center", fontsize=7)
        ax.set_yticks(range(len(rows)), [describe_scheme(r) for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set(xscale="log", xlabel="cost / training the same job (this run)",
               title="Verification schemes on one job (gray: cost model)")
        ax.set_xlim(right=max(r.ratio for r in rows) * 1e3)
    return figure_png([draw], (7.2, 1.4 + 0.32 * len(rows)))


# -- the whole report ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Tables:
    entries: tuple[Entry, ...]
    overhead: list[OverheadRow]
    spots: list[SpotRow]
    disputes: list[DisputeRow]
    repro: list[PairRow]
    bls: list[PairRow]
    schemes: list[SchemeRow]
    data_parallel: list[PairRow]
    referee: list[PairRow]  # one-operator ruling / re-executing the whole step
    headlines: list[str]
    default: tuple[str, int, int]  # (model, width, k) of the default job
    meta: dict[str, str] = field(default_factory=dict)
    isolation: list[PairRow] = field(default_factory=list)  # parties in processes / in-process
    paired: list[PairedRow] = field(default_factory=list)  # the paired ratios (the headline figures)


def get_run_meta(data: Mapping[str, Any]) -> dict[str, str]:
    """When, where and on which commit the benchmarks ran (as far as the JSON says)."""
    machine = data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {}
    cpu = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    commit = data.get("commit_info") if isinstance(data.get("commit_info"), dict) else {}
    return {"datetime": str(data.get("datetime", "?")),
            "machine": f"{cpu.get('brand_raw', machine.get('machine', '?'))}, {cpu.get('count', '?')} cores",
            "python": str(machine.get("python_version", "?")),
            "commit": f"{str(commit.get('id', '?'))[:12]}{' (dirty)' if commit.get('dirty') else ''}",
            "pytest-benchmark": str(data.get("version", "?"))}


def build_tables(data: Mapping[str, Any], default: tuple[str, int, int] | None = None) -> Tables:
    """Every table of the report from one parsed JSON document (pure)."""
    entries = parse_entries(data)
    overhead, spots = compute_honest_overhead(entries), compute_spot_checks(entries)
    disputes, schemes = compute_dispute_costs(entries), compute_schemes(entries)
    bls = compute_pairs(entries, "sign", "backend", "py_ecc", "arkworks") + \
        compute_pairs(entries, "commit", "backend", "py_ecc", "arkworks")
    repro = compute_pairs(entries, "repro-ops", "mode", "reproducible", "native")
    data_parallel = compute_pairs(entries, "train-step", "world_size", 2, 1, ignore=MEASURED_INFO) + \
        [dataclasses.replace(r, label=f"{r.label}, training loop only (train_s)") for r in
         compute_pairs(entries, "train-step", "world_size", 2, 1, ignore=MEASURED_INFO, value_key="train_s")]
    referee = compute_pairs(entries, "referee", "part", "operator", "step", ignore=REFEREE_MEASURED_INFO)
    default = default or get_default_setting()
    paired = compute_paired(entries)
    headlines = compute_paired_headlines(paired) + compute_headlines(overhead, disputes, spots, schemes, default)
    isolation = compute_pairs(entries, "isolation", "parties", "processes", "in-process", ignore=("rounds",))
    return Tables(entries, overhead, spots, disputes, repro, bls, schemes, data_parallel, referee, headlines,
                  default, get_run_meta(data), isolation, paired)


def render_overhead(rows: Sequence[OverheadRow]) -> str:
    ks = sorted({r.k for r in rows})
    series = sorted({(r.model, r.width, r.backend) for r in rows})
    cell = {(r.model, r.width, r.backend, r.k): r for r in rows}
    main = markdown_table(["model", "width", "BLS backend"] + [f"k={k}" for k in ks],
                          [[m, w, b] + [format_ratio(cell[(m, w, b, k)].ratio) if (m, w, b, k) in cell else "–"
                                        for k in ks] for m, w, b in series])
    detail = markdown_table(
        ["model", "width", "train-step", "state root", "store", "k", "long-job limit", "with storage (T, BLS as above)"],
        [[r.model, r.width, format_seconds(r.step_s), format_seconds(r.checkpoint_s), format_seconds(r.store_s),
          r.k, format_ratio(r.limit_ratio), format_ratio(r.store_ratio)]
         for r in rows if r.backend == rows[0].backend])
    return (f"Job of T={rows[0].T} steps; cell = (n · state root + trace root over n + one signature) "
            f"/ (T · train-step), n = T/k + 1.\n\n{main}\n\nPer checkpoint (BLS {rows[0].backend}): the "
            f"long-job limit is state root / (k · train-step); *with storage* adds writing every "
            f"checkpoint to zarr.\n\n{detail}")


def render_section(title: str, body: str | None, missing: str, image: str | None = None) -> str:
    if body is None:
        return f"## {title}\n\n_{missing}_\n"
    picture = f"\n\n![{title}]({image})" if image else ""
    return f"## {title}\n\n{body}{picture}\n"


def render_schemes(rows: Sequence[SchemeRow], model: ZkProvingModel) -> str:
    table = markdown_table(
        ["scheme", "setting", "time", "/ training", "steps re-executed", "detection of one bad interval",
         "catches the lazy solver", "source"],
        [[r.scheme, r.setting or "", format_seconds(r.seconds), format_ratio(r.ratio),
          "–" if r.steps_executed is None else r.steps_executed,
          "–" if r.detection is None else f"{r.detection:.2f}",
          "–" if r.catches_lazy is None else ("yes" if r.catches_lazy else "**no**"),
          "measured" if r.measured else "model"] for r in rows])
    return (f"{table}\n\nZK rows are a **cost model, not a measurement**: {model.system}, "
            f"{model.citation}: {model.workload}: prover {model.prover_s_per_iteration / 60:.0f} min per "
            f"iteration, verifier {model.verifier_s * 1e3:.0f} ms per proof, proof "
            f"{model.proof_bytes / 1e6:.2f} MB. Prover time = T × per-iteration time; {model.note}.")


def render_markdown(tables: Tables, images: Mapping[str, str]) -> str:
    """The report as markdown; ``images`` maps plot names to the paths the markdown links to."""
    meta = "; ".join(f"{k}: {v}" for k, v in tables.meta.items())
    parts = [
        "# Pinpoint overhead report",
        f"{len(tables.entries)} benchmarks ({meta}). The paired ratios come first: both sides timed "
        f"in alternation, with their spread and the load. The sections after them divide the medians "
        f"of two separate benchmarks of this run (unpaired: load may differ between the two).",
        "## Headlines\n\n" + ("\n".join(f"- {h}" for h in tables.headlines) or "_no headline figures_"),
        render_section("Paired ratios", render_paired(tables.paired) if tables.paired else None,
                       "needs the paired benchmarks (benchmarks/test_bench_paired.py)", images.get("overhead_parts")),
        render_section("Honest-case overhead vs interval and model size",
                       render_overhead(tables.overhead) if tables.overhead else None,
                       "needs groups train-step and commit (benchmarks/test_bench_lifecycle.py)",
                       images.get("overhead")),
        render_section("Dispute cost vs full re-execution",
                       render_disputes(tables.disputes, tables.referee) if tables.disputes else None,
                       "needs groups dispute/referee with extra_info T", images.get("disputes")),
        render_section("Spot-check cost vs detection probability",
                       markdown_table(["policy", "m", "n", "detection", "time", "/ replication"],
                                      [[s.policy, s.m or "–", s.n or "–",
                                        "–" if s.detection is None else f"{s.detection:.2f}",
                                        format_seconds(s.seconds), format_ratio(s.ratio)] for s in tables.spots])
                       if tables.spots else None, "needs group spot-check", images.get("spot_checks")),
        render_section("Reproducible / native", render_pairs(tables.repro) if tables.repro else None,
                       "needs group repro-ops with extra_info mode reproducible and native", images.get("repro")),
        render_section("BLS backends: py_ecc / arkworks", render_pairs(tables.bls) if tables.bls else None,
                       "needs groups sign or commit with extra_info backend", images.get("bls")),
        render_section("Data-parallel training: 2 processes / 1",
                       "One round is a whole job, process start-up included; *training loop only* "
                       "divides the loop times the benchmark recorded.\n\n" + render_pairs(tables.data_parallel)
                       if tables.data_parallel else None,
                       "needs group train-step with extra_info world_size 1 and 2", None),
        render_section("Party isolation: processes / in-process",
                       "One whole dispute game with each party in its own process (what every job runs) "
                       "against both parties as in-process objects.\n\n" + render_pairs(tables.isolation)
                       if tables.isolation else None, "needs group isolation with extra_info parties", None),
        render_section("Verification schemes on one job",
                       render_schemes(tables.schemes, KAIZEN_VGG11) if tables.schemes else None,
                       "needs group schemes", images.get("schemes")),
        "## Every benchmark\n\n" + render_all(tables.entries),
    ]
    return "\n\n".join(parts) + "\n"


def render_disputes(rows: Sequence[DisputeRow], referee: Sequence[PairRow]) -> str:
    table = markdown_table(["group", "benchmark", "T", "time", "full re-execution", "ratio", "baseline"],
                           [[d.group, d.name, d.T, format_seconds(d.seconds), format_seconds(d.replication_s),
                             format_ratio(d.ratio), d.baseline] for d in rows])
    if not referee:
        return table
    return (f"{table}\n\nThe referee's one-operator ruling against re-executing the whole disputed "
            f"step (same run):\n\n{render_pairs(referee)}")


def render_pairs(rows: Sequence[PairRow]) -> str:
    return markdown_table(["group", "pair", "numerator", "denominator", "ratio"],
                          [[r.group, r.label, format_seconds(r.numerator_s), format_seconds(r.denominator_s),
                            r.unmeasurable or format_ratio(r.ratio)] for r in rows])


def render_all(entries: Sequence[Entry]) -> str:
    ordered = sorted(entries, key=lambda e: (e.group, e.name))
    return markdown_table(["group", "benchmark", "median", "rounds", "extra_info"],
                          [[e.group, e.name, format_seconds(e.seconds), e.rounds, format_info(e.info)]
                           for e in ordered])


def render_plots(tables: Tables) -> dict[str, bytes]:
    """PNG bytes of every plot the tables can support, by plot name."""
    plots = {}
    if any(r.group == "overhead" for r in tables.paired):
        plots["overhead_parts"] = plot_overhead_parts(tables.paired)
    if tables.overhead:
        plots["overhead"] = plot_overhead(tables.overhead, tables.default[2])
    if tables.disputes:
        plots["disputes"] = plot_disputes(tables.disputes)
    if any(s.detection is not None and s.ratio is not None for s in tables.spots):
        plots["spot_checks"] = plot_spot_checks(tables.spots)
    if measurable := [r for r in tables.repro if not r.unmeasurable]:
        plots["repro"] = plot_pairs(measurable, "Reproducible / native", "time ratio (reproducible / native)")
    if tables.bls:
        plots["bls"] = plot_pairs(tables.bls, "BLS backends", "time ratio (py_ecc / arkworks)")
    if tables.schemes:
        plots["schemes"] = plot_schemes(tables.schemes)
    return plots


# -- files ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    plots: dict[str, Path]
    tables: Tables


def read_benchmark_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ReportError(f"benchmark JSON {str(path)!r} does not exist; run `make bench` first") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"benchmark JSON {str(path)!r} cannot be read: {exc}") from exc


def write_report(json_path: Path, out_dir: Path) -> ReportFiles:
    """Read one benchmark JSON and write ``report.md`` and its PNG plots into ``out_dir``."""
    tables = build_tables(read_benchmark_json(json_path))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, png in render_plots(tables).items():
        paths[name] = out_dir / f"{name}.png"
        paths[name].write_bytes(png)
    markdown = out_dir / REPORT_NAME
    markdown.write_text(render_markdown(tables, {name: p.name for name, p in paths.items()}))
    return ReportFiles(markdown, paths, tables)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("bench_json", type=Path, help="pytest --benchmark-json output")
    parser.add_argument("out_dir", type=Path, help="where report.md and the PNG plots go")
    args = parser.parse_args(argv)
    try:
        files = write_report(args.bench_json, args.out_dir)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {files.markdown} and {len(files.plots)} plots")
    for line in files.tables.headlines:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
