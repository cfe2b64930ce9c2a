"""benchmarks.report on a synthetic pytest-benchmark JSON: tables, ratios, markdown, files, CLI."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

from benchmarks.report import (
    ReportError,
    build_tables,
    compute_dispute_costs,
    compute_honest_overhead,
    compute_pairs,
    compute_schemes,
    compute_spot_checks,
    format_ratio,
    format_seconds,
    natural_key,
    parse_entries,
    plot_overhead,
    render_markdown,
    write_report,
)
from benchmarks.schemes import KAIZEN_VGG11

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT = ("mlp", 64, 25)


def test_parse_skips_entries_without_timings_and_keeps_extra_info(bench_document):
    entries = parse_entries(bench_document)
    assert len(entries) == len(bench_document["benchmarks"]) - 1
    step = next(e for e in entries if e.name == "test_train_step[mlp-64]")
    assert (step.group, step.test, step.seconds, step.info["width"]) == ("train-step", "test_train_step", 100e-6, 64)


@pytest.mark.parametrize("document", [{}, {"benchmarks": "x"}, [], None])
def test_parse_rejects_documents_that_are_not_pytest_benchmark_output(document):
    with pytest.raises(ReportError, match="benchmark-json"):
        parse_entries(document)


def test_honest_overhead_divides_the_commitment_of_a_job_by_its_training(bench_document):
    rows = compute_honest_overhead(parse_entries(bench_document))
    assert {(r.width, r.params) for r in rows} == {(64, 4810), (128, 9610)}
    assert [(r.width, r.backend, r.k) for r in rows] == [
        (64, "arkworks", 25), (64, "arkworks", 100), (64, "py_ecc", 25),
        (128, "arkworks", 25), (128, "arkworks", 100), (128, "py_ecc", 25)]
    row = rows[0]
    assert row.checkpoints == 41
    assert row.ratio == pytest.approx((41 * 50e-6 + 1e-3) / (1000 * 100e-6))
    assert row.limit_ratio == pytest.approx(50e-6 / (25 * 100e-6))
    assert row.store_ratio == pytest.approx((41 * (50e-6 + 1e-3) + 1e-3) / (1000 * 100e-6))
    assert rows[2].ratio == pytest.approx((41 * 50e-6 + 0.1) / 0.1)
    assert rows[3].store_s is None and rows[3].store_ratio is None  # width 128 has no store benchmark


def test_spot_checks_are_stated_against_replication_of_the_same_job(bench_document):
    rows = compute_spot_checks(parse_entries(bench_document))
    assert [(r.policy, r.detection) for r in rows] == [("interval", 0.05), ("replicate", 1.0)]
    assert rows[0].ratio == pytest.approx(0.05) and rows[1].ratio == pytest.approx(1.0)


def test_disputes_use_measured_replication_when_present_else_T_train_steps(bench_document):
    rows = {r.name: r for r in compute_dispute_costs(parse_entries(bench_document))}
    assert set(rows) == {"test_dispute[100-2]", "test_dispute[1000-2]", "test_dispute[1000-40]",
                         "test_referee[operator]", "test_referee[step]"}
    assert rows["test_dispute[1000-40]"].ratio == pytest.approx(0.025 / 0.125)
    assert rows["test_dispute[1000-40]"].baseline.startswith("measured (dispute: test_replication[1000])")
    assert rows["test_dispute[100-2]"].replication_s == pytest.approx(100 * 100e-6)
    # no model in its extra_info: the default preset's MLP is the job re-executed
    assert rows["test_referee[operator]"].replication_s == pytest.approx(1000 * 100e-6)


def test_dispute_lines_are_split_by_the_settings_that_vary(bench_document):
    rows = compute_dispute_costs(parse_entries(bench_document))
    assert sorted({r.series for r in rows}) == ["test_dispute (arity=2)", "test_dispute (arity=40)",
                                                "test_referee (part=operator)", "test_referee (part=step)"]


def test_referee_operator_is_paired_with_the_whole_step(bench_document):
    rows = build_tables(bench_document, DEFAULT).referee
    assert [(r.label, r.ratio) for r in rows] == [("test_referee", pytest.approx(0.25)),
                                                  ("test_referee_width", pytest.approx(0.125))]


def test_pairs_match_entries_that_differ_only_in_the_paired_key(bench_document):
    entries = parse_entries(bench_document)
    repro = compute_pairs(entries, "repro-ops", "mode", "reproducible", "native")
    assert [(r.label, r.ratio) for r in repro] == [("test_op (op=matmul)", pytest.approx(5.0))]
    bls = compute_pairs(entries, "sign", "backend", "py_ecc", "arkworks")
    assert [(r.label, r.ratio) for r in bls] == [("test_sign", pytest.approx(100.0))]


def test_pairs_ignore_measured_info_only_when_told(bench_document):
    entries = parse_entries(bench_document)
    assert compute_pairs(entries, "train-step", "world_size", 2, 1) == []
    rows = compute_pairs(entries, "train-step", "world_size", 2, 1, ignore=("train_s", "step_s"))
    assert [(r.label, r.ratio) for r in rows] == [("test_train_data_parallel", pytest.approx(40.0))]


def test_pairs_can_compare_seconds_a_benchmark_recorded_in_its_info(bench_document):
    entries = parse_entries(bench_document)
    rows = compute_pairs(entries, "train-step", "world_size", 2, 1, ignore=("train_s", "step_s"),
                         value_key="train_s")
    assert [(r.numerator_s, r.denominator_s, r.ratio) for r in rows] == [(0.04, 0.02, pytest.approx(2.0))]
    assert compute_pairs(entries, "sign", "backend", "py_ecc", "arkworks", value_key="train_s") == []
    loop = build_tables(bench_document, DEFAULT).data_parallel[1]
    assert loop.label.endswith("training loop only (train_s)") and loop.ratio == pytest.approx(2.0)


def test_schemes_are_multiples_of_training_and_the_zk_rows_are_a_model(bench_document):
    rows = compute_schemes(parse_entries(bench_document))
    by_scheme = {r.scheme: r for r in rows}
    assert by_scheme["training"].ratio == 1.0
    assert by_scheme["replication"].ratio == pytest.approx(10.0)
    assert by_scheme["pol-top-q"].catches_lazy is False and by_scheme["pol-top-q"].setting == "Q=1"
    models = [r for r in rows if not r.measured]
    assert [r.scheme for r in models] == ["zk-proof (prover, model)", "zk-proof (verifier, model)"]
    assert models[0].seconds == pytest.approx(200 * KAIZEN_VGG11.prover_s_per_iteration)
    assert models[0].ratio == pytest.approx(200 * 900.0 / 0.02)


def test_schemes_without_a_training_entry_give_no_rows(bench_document):
    entries = [e for e in parse_entries(bench_document) if e.info.get("scheme") != "training"]
    assert compute_schemes(entries) == []


def test_headlines_name_the_default_job_and_the_largest_T(bench_document):
    tables = build_tables(bench_document, DEFAULT)
    text = "\n".join(tables.headlines)
    assert "mlp width 64, T=1000, k=25, BLS arkworks: 3 % of training" in text
    assert "dispute test_dispute (arity=2) at the largest T=1000: 16 % of full re-execution" in text
    assert "dispute test_dispute (arity=40) at the largest T=1000: 20 % of full re-execution" in text
    assert "cheapest spot check (m=1 of n=20, detection 0.05): 5 % of replication" in text


def test_markdown_has_every_section_every_group_and_the_zk_citation(bench_document):
    tables = build_tables(bench_document, DEFAULT)
    markdown = render_markdown(tables, {"overhead": "overhead.png"})
    for title in ("Honest-case overhead", "Dispute cost", "Spot-check cost", "Reproducible / native",
                  "BLS backends", "Data-parallel training", "Verification schemes", "Every benchmark"):
        assert f"## {title}" in markdown
    for group in ("train-step", "commit", "spot-check", "dispute", "referee", "repro-ops", "sign",
                  "schemes", "settle"):
        assert f"| {group} |" in markdown
    assert "![Honest-case overhead vs interval and model size](overhead.png)" in markdown
    assert "cost model, not a measurement" in markdown and "CCS 2024" in markdown


def test_overhead_plot_leaves_out_the_size_panel_without_parameter_counts(bench_document):
    rows = [dataclasses.replace(r, params=None) for r in compute_honest_overhead(parse_entries(bench_document))]
    with_sizes = matplotlib.image.imread(io.BytesIO(plot_overhead(compute_honest_overhead(
        parse_entries(bench_document)), 25)), format="png")
    without = matplotlib.image.imread(io.BytesIO(plot_overhead(rows, 25)), format="png")
    assert with_sizes.shape[1] > without.shape[1]  # one panel fewer, so a narrower figure


def test_markdown_says_which_suite_is_missing():
    tables = build_tables({"benchmarks": []}, DEFAULT)
    markdown = render_markdown(tables, {})
    assert "_needs groups train-step and commit" in markdown and "_needs group schemes_" in markdown


@pytest.mark.parametrize("seconds, text", [(2.5e-6, "2.5 µs"), (0.0123, "12.3 ms"), (1.5, "1.5 s"),
                                           (90.0, "1.5 min"), (7200.0, "2 h"), (None, "–")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


@pytest.mark.parametrize("ratio, text", [(0.0305, "3 %"), (0.5, "50 %"), (1.0, "1×"), (123.4, "123×")])
def test_format_ratio(ratio, text):
    assert format_ratio(ratio) == text


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_write_report_writes_the_markdown_and_one_png_per_section(bench_document, tmp_path):
    source = tmp_path / "benchmarks.json"
    source.write_text(json.dumps(bench_document))
    files = write_report(source, tmp_path / "out")
    assert set(files.plots) == {"overhead", "disputes", "spot_checks", "repro", "bls", "schemes"}
    markdown = files.markdown.read_text()
    for path in files.plots.values():
        assert_valid_png(path)
        assert f"]({path.name})" in markdown


def test_cli_writes_the_report(bench_document, tmp_path):
    source = tmp_path / "benchmarks.json"
    source.write_text(json.dumps(bench_document))
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "benchmarks.report", str(source), str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (out / "report.md").is_file()
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 6
    for png in pngs:
        assert_valid_png(png)


def test_cli_names_a_missing_json_and_how_to_make_it(tmp_path):
    missing = tmp_path / "nothing.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.report", str(missing), str(tmp_path / "out")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert str(missing) in done.stderr and "make bench" in done.stderr


def test_natural_key_orders_numbers_by_value():
    labels = ["commit (k=100)", "commit (k=2)", "commit (k=10)"]
    assert sorted(labels, key=natural_key) == ["commit (k=2)", "commit (k=10)", "commit (k=100)"]


def test_a_product_alone_is_held_to_the_matmul_goal_and_a_step_to_the_step_goal():
    from benchmarks.report import get_goal

    assert get_goal("repro-ops", "reproducible/native", {"op": "matmul", "width": 1024}) == ("≤", 1.3)
    assert get_goal("repro-ops", "reproducible/native", {"case": "cnn-16"}) == ("≤", 1.5)
