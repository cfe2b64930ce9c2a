"""Command line: ``python -m verification run|show [--preset NAME | --spec FILE] [--artifacts DIR]``.

``run`` executes a whole job in this process (no Dagster), ``show`` prints the summary of a job's
report. The Dagster CLI (``make demo``) is the main entry; this one is for scripts and debugging.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from verification.lifecycle import run_job
from verification.paths import ArtifactPaths, default_artifacts_dir, default_store
from verification.report import read_report, render_table
from verification.spec import compute_job_id, get_preset, load_spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verification")
    parser.add_argument("command", choices=["run", "show"])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--spec", help="job spec file (YAML or JSON); overrides --preset")
    parser.add_argument("--artifacts", type=Path, default=None)
    args = parser.parse_args(argv)
    spec = load_spec(args.spec) if args.spec else get_preset(args.preset)
    paths = ArtifactPaths(args.artifacts.resolve() if args.artifacts else default_artifacts_dir(), default_store())
    if args.command == "run":
        report = run_job(spec, paths)
    else:
        report = read_report(paths.report(compute_job_id(spec)))
    print(render_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
