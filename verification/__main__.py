"""Command line: ``pinpoint run|show [--preset NAME | --spec FILE] [--artifacts DIR]`` (the console
script ``pip install -e .`` installs; ``python -m verification`` is the same).

``run`` executes a whole job in this process (no Dagster), ``show`` prints the summary of a job's
report. The Dagster CLI (``make demo``) is the main entry; this one is for scripts and debugging.
An error is one line naming what is wrong (``--debug`` shows the traceback); ``--help`` answers
without importing torch.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

COMMANDS = {
    "run": "train, commit, verify, dispute and settle one job in this process, then print its summary",
    "show": "print the summary of a job's report (artifacts/runs/<job_id>/report.json)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pinpoint",
                                     description="Pinpoint: optimistic verification of a training job.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,show}")
    for name, summary in COMMANDS.items():
        command = commands.add_parser(name, help=summary, description=summary)
        # The same environment variables choose the job for the Dagster code location
        # (pipelines.resources), so `make demo` shows the job that Dagster ran.
        command.add_argument("--preset", default=os.environ.get("PINPOINT_PRESET", "default"),
                             help="a built-in job: default, minimal or gpt (default: $PINPOINT_PRESET or default)")
        command.add_argument("--spec", default=os.environ.get("PINPOINT_SPEC") or None,
                             help="job spec file (YAML or JSON); overrides --preset (default: $PINPOINT_SPEC)")
        command.add_argument("--artifacts", type=Path, default=None,
                             help="where reports, records and the ledger live (default: $PINPOINT_ARTIFACTS "
                                  "or ./artifacts)")
        command.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def execute(args: argparse.Namespace) -> None:
    from verification.job import resolve_job
    from verification.lifecycle import run_job
    from verification.paths import ArtifactPaths, default_artifacts_dir, default_store
    from verification.report import read_report, render_table
    from verification.spec import get_preset, load_spec

    spec = load_spec(args.spec) if args.spec else get_preset(args.preset)
    paths = ArtifactPaths(args.artifacts.resolve() if args.artifacts else default_artifacts_dir(), default_store())
    report = run_job(spec, paths) if args.command == "run" else read_report(paths.report(resolve_job(spec).job_id))
    print(render_table(report))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        execute(args)
    except (ValueError, RuntimeError, OSError) as exc:  # every Pinpoint error is one of these
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
