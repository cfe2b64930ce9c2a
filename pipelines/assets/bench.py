"""The overhead study's report: ``artifacts/bench/report.md`` and its plots, shown in the UI.

The asset only reads the JSON that ``make bench`` wrote (``<artifacts>/bench/benchmarks.json``) and
renders it (``benchmarks.report``); it never runs the benchmarks, which take minutes and must run
on a quiet machine.
"""

from pathlib import Path

import dagster as dg

from benchmarks.report import write_report
from pipelines.resources import PinpointConfig
from verification.plots import png_markdown

BENCH_DIR = "bench"
BENCH_JSON = "benchmarks.json"
PREFERRED_PLOT = ("overhead", "schemes", "disputes", "spot_checks")


def get_bench_json(artifacts: Path) -> Path:
    return artifacts / BENCH_DIR / BENCH_JSON


@dg.asset(group_name="benchmarks", kinds={"matplotlib"},
          description="The overhead report of the latest `make bench` run: every verification cost as a "
                      "ratio to the training cost measured in the same run (reads benchmarks.json; "
                      "never runs the benchmarks).")
def benchmark_report(context: dg.AssetExecutionContext, pinpoint: PinpointConfig) -> dg.MaterializeResult:
    artifacts = pinpoint.paths().root
    source = get_bench_json(artifacts)
    # Rule: the asset renders an existing benchmark run; it never starts one.
    if not source.is_file():
        raise dg.Failure(description=f"no benchmark results at {source}: run `make bench` first "
                                     f"(it writes that file, then this report)")
    files = write_report(source, artifacts / BENCH_DIR)
    metadata: dict[str, dg.MetadataValue] = {
        "report": dg.MetadataValue.md(files.markdown.read_text()),
        "path": dg.MetadataValue.path(str(files.markdown)),
        "source": dg.MetadataValue.path(str(source)),
        "benchmarks": dg.MetadataValue.int(len(files.tables.entries)),
        "headlines": dg.MetadataValue.md("\n".join(f"- {h}" for h in files.tables.headlines) or "none"),
    }
    plot = next((name for name in PREFERRED_PLOT if name in files.plots), None)
    if plot is not None:
        metadata[f"plot_{plot}"] = dg.MetadataValue.md(png_markdown(files.plots[plot].read_bytes(), plot))
    context.log.info(f"wrote {files.markdown} with {len(files.plots)} plots from {source}")
    return dg.MaterializeResult(metadata=metadata)
