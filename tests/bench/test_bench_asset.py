"""The Dagster asset ``benchmark_report``: renders the latest benchmark JSON, never runs benchmarks."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from pipelines.assets.bench import benchmark_report, get_bench_json
from pipelines.resources import PinpointConfig


def test_asset_renders_the_latest_json_with_the_report_and_a_plot_as_metadata(bench_document, tmp_path):
    source = get_bench_json(tmp_path)
    source.parent.mkdir(parents=True)
    source.write_text(json.dumps(bench_document))
    with dg.build_asset_context() as context:
        result = benchmark_report(context, pinpoint=PinpointConfig(artifacts_dir=str(tmp_path)))
    assert (tmp_path / "bench" / "report.md").is_file() and (tmp_path / "bench" / "overhead.png").is_file()
    metadata = result.metadata
    assert "## Honest-case overhead" in metadata["report"].value
    assert metadata["plot_overhead"].value.startswith("![overhead](data:image/png;base64,")
    assert metadata["benchmarks"].value == len(bench_document["benchmarks"]) - 1


def test_asset_fails_naming_the_missing_json_and_make_bench(tmp_path):
    with dg.build_asset_context() as context, pytest.raises(dg.Failure) as failure:
        benchmark_report(context, pinpoint=PinpointConfig(artifacts_dir=str(tmp_path)))
    assert str(get_bench_json(tmp_path)) in failure.value.description
    assert "make bench" in failure.value.description
    assert not (tmp_path / "bench").exists()
