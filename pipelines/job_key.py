"""``python -m pipelines.job_key``: the id of the job the environment names (``PINPOINT_SPEC`` or
``PINPOINT_PRESET``, as ``pipelines.resources.config_from_env`` reads them) — the partition key
``make demo`` launches. Imports no Dagster, so it answers in the time of importing the spec."""

from __future__ import annotations

import os

from verification.spec import compute_job_id, get_preset, load_spec


def main() -> int:
    path = os.environ.get("PINPOINT_SPEC", "")
    spec = load_spec(path) if path else get_preset(os.environ.get("PINPOINT_PRESET", "default"))
    print(compute_job_id(spec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
