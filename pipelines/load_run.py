"""Load run: many jobs x 3 solvers through the fleet on this machine, then an audit.

``python -m pipelines.load_run --jobs 20 [--workers 2] [--out DIR]`` writes N job specs (the
minimal preset with N seeds; solvers honest, lazy, bitflip) into an inbox, drives the fleet with
the inbox sensor until every job is concluded, and prints throughput (jobs/min) and an audit:
every artifact present exactly once, each partition materialized exactly once, one lock and one
settlement per job in the ledger, total supply conserved.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import dagster as dg
import yaml

from pipelines.assets import fleet
from pipelines.fleet_driver import drive
from pipelines.resources import PinpointConfig
from verification import store
from verification.job import resolve_job
from verification.settlement import Ledger
from verification.spec import load_spec

SOLVERS = ["honest", {"solver_id": "lazy", "strategy": "lazy", "params": {"start": 9, "length": 8}},
           {"solver_id": "bitflip", "strategy": "bitflip", "params": {"step": 21}}]


def write_inbox(inbox: Path, jobs: int) -> list[str]:
    inbox.mkdir(parents=True, exist_ok=True)
    ids = []
    for seed in range(jobs):
        path = inbox / f"job-{seed:03d}.yaml"
        path.write_text(yaml.safe_dump({"preset": "minimal", "seed": seed, "solvers": SOLVERS}))
        ids.append(resolve_job(load_spec(path)).job_id)
    return ids


def audit(instance: dg.DagsterInstance, pinpoint: PinpointConfig, job_ids: list[str]) -> dict:
    """Count every artifact, materialization and ledger entry; report anything lost or doubled."""
    paths, problems = pinpoint.paths(), []
    for job_id in job_ids:
        spec = store.load_spec_of(paths, job_id)
        for solver in spec.solvers:
            for record in (store.run_path, store.commitment_path):
                if not record(paths, job_id, solver.solver_id).is_file():
                    problems.append(f"missing {record.__name__} of {job_id}/{solver.solver_id}")
        if not paths.report(job_id).is_file():
            problems.append(f"missing report of {job_id}")
    counts = Counter()
    for asset in (fleet.fleet_dataset, fleet.fleet_training, fleet.fleet_commitment, fleet.fleet_outcome):
        for record in instance.fetch_materializations(asset.key, limit=10_000).records:
            counts[(asset.key.to_user_string(), record.partition_key)] += 1
    problems += [f"{asset}[{key}] materialized {n} times" for (asset, key), n in counts.items() if n != 1]
    with Ledger(paths.ledger) as ledger:
        kinds = Counter((tx.kind, tx.job_id) for tx in ledger.history())
        for job_id in job_ids:
            for kind in ("lock", "settle"):
                if kinds[(kind, job_id)] != 1:
                    problems.append(f"ledger has {kinds[(kind, job_id)]} {kind} transactions for {job_id}")
        conserved = ledger.supply() == ledger.minted()
    if not conserved:
        problems.append("total supply is not conserved")
    outcomes = Counter()
    for job_id in job_ids:
        if paths.report(job_id).is_file():
            report = json.loads(paths.report(job_id).read_text())
            outcomes.update(f"{s['solver_id']}:{s['outcome']}" for s in report["solvers"])
    return {"materializations": sum(counts.values()), "problems": problems, "outcomes": dict(outcomes),
            "supply_conserved": conserved}


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    parser = argparse.ArgumentParser(prog="python -m pipelines.load_run")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="working folder (default: a temp dir)")
    args = parser.parse_args(argv)
    out = (args.out or Path(tempfile.mkdtemp(prefix="pinpoint-load-"))).resolve()
    (out / "dagster_home").mkdir(parents=True, exist_ok=True)
    job_ids = write_inbox(out / "inbox", args.jobs)
    pinpoint = PinpointConfig(artifacts_dir=str(out / "artifacts"))
    instance = dg.DagsterInstance.local_temp(str(out / "dagster_home"))
    stats = drive(instance, pinpoint, fleet.JobInbox(path=str(out / "inbox")), workers=args.workers)
    result = audit(instance, pinpoint, job_ids)
    summary = {"jobs": args.jobs, "solvers_per_job": len(SOLVERS), "runs": stats.runs,
               "failed_runs": stats.failed, "seconds": round(stats.seconds, 1),
               "jobs_per_min": round(60 * args.jobs / stats.seconds, 2), **result, "out": str(out)}
    print(json.dumps(summary, indent=1))
    return 0 if not stats.failed and not result["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
