"""benchmarks.paired and the report's paired section, on fake clocks and synthetic entries."""

from __future__ import annotations

import io

import matplotlib.image
import pytest

from benchmarks.paired import (
    PairedError,
    calibrate_repeat,
    compute_rotation,
    is_measurable_setting,
    measure_paired,
    ratio_of,
)
from benchmarks.report import (
    build_tables,
    compute_paired,
    parse_entries,
    plot_overhead_parts,
    render_markdown,
)


class StepClock:
    """A clock that advances by the cost the running side declared (no real time involved)."""

    def __init__(self):
        self.now, self.log = 0.0, []

    def __call__(self) -> float:
        return self.now

    def side(self, name: str, costs):
        costs = iter(costs)

        def run() -> None:
            self.log.append(name)
            self.now += next(costs)
        return run


def test_sides_alternate_in_rotated_order_and_ratios_are_per_round():
    clock = StepClock()
    sides = {"a": clock.side("a", [2.0, 4.0, 6.0]), "b": clock.side("b", [1.0, 1.0, 2.0])}
    result = measure_paired(sides, {"a/b": ratio_of("a", "b")}, 3, clock=clock, load=lambda: 0.5, cores=2)
    assert clock.log == ["a", "b", "b", "a", "a", "b"]
    assert result.times == {"a": (2.0, 4.0, 6.0), "b": (1.0, 1.0, 2.0)}
    assert result.ratios["a/b"] == (2.0, 4.0, 3.0)
    info = result.to_info()
    assert info["ratios"]["a/b"] == {"median": 3.0, "min": 2.0, "max": 4.0}
    assert (info["rounds"], info["load"], info["cores"], info["measurable"]) == (3, [0.5, 0.5], 2, True)


def test_a_ratio_to_a_side_that_took_no_time_and_empty_measurements_are_refused():
    clock = StepClock()
    sides = {"a": clock.side("a", [1.0]), "b": clock.side("b", [0.0])}
    with pytest.raises(PairedError, match="side 'b' took 0.0 s"):
        measure_paired(sides, {"a/b": ratio_of("a", "b")}, 1, clock=clock, load=lambda: 0.0, cores=2)
    with pytest.raises(PairedError, match="needs sides, rounds >= 1 and repeat >= 1"):
        measure_paired({}, {}, 3)
    with pytest.raises(PairedError, match="1 rounds x 0"):
        measure_paired(sides, {}, 1, repeat=0)


def test_a_repeated_side_runs_back_to_back_and_its_time_is_the_mean_call():
    clock = StepClock()
    sides = {"a": clock.side("a", [1.0, 3.0, 2.0, 2.0]), "b": clock.side("b", [1.0, 1.0, 0.5, 0.5])}
    result = measure_paired(sides, {"a/b": ratio_of("a", "b")}, 2, repeat=2, clock=clock, load=lambda: 0.0, cores=2)
    assert clock.log == ["a", "a", "b", "b", "b", "b", "a", "a"]
    assert result.times == {"a": (2.0, 2.0), "b": (1.0, 0.5)}
    assert result.ratios["a/b"] == (2.0, 4.0)
    assert result.to_info()["repeat"] == 2


def test_the_repeat_is_calibrated_on_the_fastest_side_and_capped():
    clock = StepClock()
    sides = {"a": clock.side("a", [0.004]), "b": clock.side("b", [0.001])}
    assert calibrate_repeat(sides, 0.01, clock=clock) == 10
    assert clock.log == ["a", "b"]  # one warm-up call each
    slow = {"a": clock.side("a", [0.5])}
    assert calibrate_repeat(slow, 0.01, clock=clock) == 1
    instant = {"a": clock.side("a", [0.0])}
    assert calibrate_repeat(instant, 0.01, limit=8, clock=clock) == 8


def test_rotation_starts_each_round_with_the_next_side():
    assert [compute_rotation(["a", "b", "c"], r) for r in range(4)] == \
        [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


@pytest.mark.parametrize("workers, load, cores, measurable", [
    (1, 9.0, 2, True), (2, 0.0, 2, True), (2, 0.5, 2, False), (2, None, 2, False), (4, 1.0, 8, True)])
def test_multi_threaded_timings_need_a_free_core_per_thread(workers, load, cores, measurable):
    assert is_measurable_setting(workers, load, cores) is measurable


def paired_entry(group: str, case: str, ratios: dict, params: int = 100, threads: int = 1, load=(0.4, 0.6),
                 **info) -> dict:
    spread = {name: {"median": v, "min": v * 0.9, "max": v * 1.1} for name, v in ratios.items()}
    return {"group": group, "name": f"test_{group}[{case}]", "stats": {"median": 1.0, "rounds": 1},
            "extra_info": {"case": case, "params": params, **info,
                           "paired": {"rounds": 5, "load": list(load), "cores": 2, "threads": threads,
                                      "measurable": is_measurable_setting(threads, max(load), 2),
                                      "ratios": spread}}}


def paired_document() -> dict:
    parts = {"hash": 0.004, "merkle": 0.0001, "sign": 0.002, "storage": 0.05, "commit": 0.0061,
             "commit+storage": 0.0561}
    return {"benchmarks": [
        paired_entry("overhead", "mlp", parts, params=5000),
        paired_entry("overhead", "gpt", {k: v / 10 for k, v in parts.items()}, params=100_000),
        paired_entry("referee", "mlp", {"ruling/step": 0.7}),
        paired_entry("commit", "1 MB", {"raw/state_root": 0.85}, bytes=2**20),
        paired_entry("commit", "mlp", {"raw/state_root": 0.45}, bytes=38_000),
        paired_entry("repro-ops", "mlp", {"reproducible/native": 3.0}, threads=2),
    ]}


def test_the_report_holds_each_paired_ratio_to_its_goal():
    rows = {(r.group, r.case, r.ratio): r for r in compute_paired(parse_entries(paired_document()))}
    assert rows[("overhead", "mlp", "commit")].verdict == "met"  # 0.61 % <= 1 %
    assert rows[("overhead", "mlp", "commit+storage")].verdict == "met"
    assert rows[("overhead", "mlp", "hash")].goal is None
    assert rows[("referee", "mlp", "ruling/step")].verdict == "**missed**"  # 70 % > 50 %
    assert rows[("commit", "1 MB", "raw/state_root")].goal == ("≥", 0.8)
    assert rows[("commit", "mlp", "raw/state_root")].verdict == "**missed**"  # 45 % < 50 %
    oversubscribed = rows[("repro-ops", "mlp", "reproducible/native")]
    assert oversubscribed.unmeasurable.startswith("not measurable here: 2 threads on 2 cores")
    assert oversubscribed.verdict == ""


def test_paired_ratios_lead_the_report_with_spread_and_load():
    tables = build_tables(paired_document(), ("mlp", 64, 25))
    assert tables.headlines[0].startswith("overhead commit, mlp: 0.61 % [0.55 % – 0.67 %] (goal ≤ 1 %: met")
    markdown = render_markdown(tables, {"overhead_parts": "overhead_parts.png"})
    assert markdown.index("## Paired ratios") < markdown.index("## Honest-case overhead")
    assert "| overhead | mlp | commit | 0.61 % | 0.55 % – 0.67 % | 5 | 0.4 → 0.6 (2) | ≤ 1 % | met |" in markdown
    assert "not measurable here: 2 threads on 2 cores at load 0.6" in markdown
    assert "![Paired ratios](overhead_parts.png)" in markdown


def test_the_overhead_parts_plot_has_one_bar_per_model():
    rows = compute_paired(parse_entries(paired_document()))
    one = [r for r in rows if r.case == "mlp"]
    two = matplotlib.image.imread(io.BytesIO(plot_overhead_parts(rows)), format="png")
    single = matplotlib.image.imread(io.BytesIO(plot_overhead_parts(one)), format="png")
    assert two.shape[0] > single.shape[0]  # taller: one more bar


def test_unpaired_pairs_of_oversubscribed_timings_are_labelled_not_shown():
    from benchmarks.report import compute_pairs

    def entry(mode: str, threads: int, load: list) -> dict:
        return {"group": "repro-ops", "name": f"test_step[{mode}-{threads}]", "stats": {"median": 1.0, "rounds": 3},
                "extra_info": {"mode": mode, "threads": threads, "load": load, "cores": 2}}

    document = {"benchmarks": [entry("reproducible", 1, [1.5, 1.7]), entry("native", 1, [1.2, 1.5]),
                               entry("reproducible", 2, [0.9, 1.1]), entry("native", 2, [1.0, 1.2])]}
    rows = {r.label: r for r in compute_pairs(parse_entries(document), "repro-ops", "mode", "reproducible", "native")}
    assert [r.unmeasurable for r in rows.values()] == ["", "not measurable here: 2 workers on 2 cores at load 1.1"]
