"""``python -m verification``: errors a person can act on, and help that answers at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from verification.__main__ import main


def test_a_typo_in_the_spec_is_one_line_with_a_suggestion_and_nothing_is_written(tmp_path, capsys):
    spec = tmp_path / "job.yaml"
    spec.write_text("preset: minimal\nmodel: mlpp\n")
    assert main(["run", "--spec", str(spec), "--artifacts", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "unknown model 'mlpp' (did you mean 'mlp'?)" in err
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("argv, message", [
    (["show", "--preset", "minimall"], "unknown preset 'minimall' (did you mean 'minimal'?)"),
    (["run", "--spec", "/no/such/job.yaml"], "cannot be read"),
])
def test_other_errors_are_one_line_too(argv, message, capsys, tmp_path):
    assert main([*argv, "--artifacts", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_debug_shows_the_error_itself(tmp_path):
    from verification.spec import SpecError

    with pytest.raises(SpecError, match="unknown preset"):
        main(["show", "--preset", "nope", "--debug", "--artifacts", str(tmp_path)])


def test_each_subcommand_has_its_own_help_without_importing_torch():
    probe = ("import sys, contextlib, io\n"
             "from verification.__main__ import main\n"
             "out = io.StringIO()\n"
             "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
             "    main(['run', '--help'])\n"
             "print('torch' in sys.modules, 'usage: pinpoint run' in out.getvalue())\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["False", "True"], done.stderr[-2000:]


def test_the_job_comes_from_the_same_environment_as_dagsters(monkeypatch, tmp_path, capsys):
    """``make demo`` runs ``show`` after Dagster: PINPOINT_PRESET / PINPOINT_SPEC pick the job for
    both (pipelines.resources.config_from_env), so the summary is the job that ran."""
    from verification.__main__ import build_parser

    monkeypatch.setenv("PINPOINT_PRESET", "minimal")
    monkeypatch.delenv("PINPOINT_SPEC", raising=False)
    assert build_parser().parse_args(["show"]).preset == "minimal"
    spec = tmp_path / "job.yaml"
    spec.write_text("preset: minimal\nsteps: 16\n")
    monkeypatch.setenv("PINPOINT_SPEC", str(spec))
    assert build_parser().parse_args(["show"]).spec == str(spec)
    assert main(["show", "--artifacts", str(tmp_path / "none")]) == 2  # that job has no report yet
    assert "report" in capsys.readouterr().err
