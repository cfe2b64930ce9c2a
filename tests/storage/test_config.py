"""``PINPOINT_STORE`` and ``PinpointConfig.store`` choose where a job's zarr stores go."""

from pipelines.resources import PinpointConfig, config_from_env


def test_the_store_comes_from_the_environment_and_reaches_the_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("PINPOINT_ARTIFACTS", str(tmp_path))
    monkeypatch.setenv("PINPOINT_STORE", "s3://bucket/pinpoint")
    paths = config_from_env().paths()
    assert paths.root == tmp_path and paths.store == "s3://bucket/pinpoint"
    assert paths.dataset("j") == "s3://bucket/pinpoint/runs/j/dataset"
    assert paths.report("j") == tmp_path / "runs" / "j" / "report.json"


def test_no_store_keeps_the_stores_under_the_artifacts_directory(tmp_path):
    paths = PinpointConfig(artifacts_dir=str(tmp_path)).paths()
    assert paths.checkpoints("j", "s") == str(tmp_path / "runs" / "j" / "solvers" / "s" / "checkpoints.zarr")
