"""Resources: where the job spec and the artifacts come from.

``PinpointConfig`` picks the job: a preset name (``default``, ``minimal``) or a YAML/JSON spec
file, and the artifacts directory. Its defaults come from the environment at load time
(``PINPOINT_PRESET``, ``PINPOINT_SPEC``, ``PINPOINT_ARTIFACTS``) so the CLI materializes the
embedded default job with no run config; run config can still override every field.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from verification.paths import ArtifactPaths, default_artifacts_dir
from verification.spec import JobSpec, get_preset, load_spec


class PinpointConfig(dg.ConfigurableResource):
    """The job to run and where its artifacts go."""

    preset: str = "default"
    spec_path: str = ""
    artifacts_dir: str = ""

    def spec(self) -> JobSpec:
        return load_spec(self.spec_path) if self.spec_path else get_preset(self.preset)

    def paths(self) -> ArtifactPaths:
        root = Path(self.artifacts_dir).resolve() if self.artifacts_dir else default_artifacts_dir()
        return ArtifactPaths(root)


def config_from_env() -> PinpointConfig:
    return PinpointConfig(
        preset=os.environ.get("PINPOINT_PRESET", "default"),
        spec_path=os.environ.get("PINPOINT_SPEC", ""),
        artifacts_dir=os.environ.get("PINPOINT_ARTIFACTS", ""),
    )


def default_executor() -> dg.ExecutorDefinition:
    """Multiprocess, at most ``PINPOINT_MAX_CONCURRENT`` (default 2) steps of a run at once:
    training is CPU-bound and pinned to one thread per step, so two fill this 2-core machine."""
    return dg.multiprocess_executor.configured(
        {"max_concurrent": int(os.environ.get("PINPOINT_MAX_CONCURRENT", "2"))})
