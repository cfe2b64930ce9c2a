import pytest

from verification.spec import SpecError, compute_job_id, get_preset, load_spec, spec_from_dict


def test_presets_are_valid_and_content_addressed():
    from verification.spec import PRESETS, validate_spec

    assert set(PRESETS) == {"default", "minimal", "gpt"}
    for name in PRESETS:
        validate_spec(get_preset(name))
    assert compute_job_id(get_preset("default")) == compute_job_id(get_preset("default"))
    assert len({compute_job_id(get_preset(name)) for name in PRESETS}) == len(PRESETS)
    assert compute_job_id(get_preset("default")).startswith("job-")


def test_spec_from_yaml(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        "preset: minimal\nsteps: 24\ncheckpoint_interval: 6\neconomics: {solver_stake: 10}\n"
        "solvers:\n  - honest\n  - {solver_id: cheat, strategy: bitflip, params: {step: 7}}\n"
    )
    spec = load_spec(path)
    assert spec.steps == 24 and spec.economics.solver_stake == 10
    assert [s.solver_id for s in spec.solvers] == ["honest", "cheat"]
    assert spec.solvers[1].params == {"step": 7}
    assert spec.model_params == get_preset("minimal").model_params


@pytest.mark.parametrize("data,needle", [
    ({"checkpoint_interval": 100, "steps": 40}, "checkpoint_interval"),
    ({"steps": 41}, "multiple"),
    ({"economics": {"solver_stake": -5}}, "solver_stake"),
    ({"economics": {"solver_stake": 1.5}}, "integer"),
    ({"economics": {"stake": 1}}, "unknown field"),
    ({"dissection_arity": 41}, "dissection_arity"),
    ({"spot_check_probability": 1.5}, "spot_check_probability"),
    ({"mode": "fast"}, "mode"),
    ({"hash_name": "md5"}, "hash_name"),
    ({"solvers": ["a", "a"]}, "unique"),
    ({"solvers": ["verifier"]}, "verifier"),
    ({"stepz": 3}, "unknown field"),
    ({"preset": "huge"}, "unknown preset"),
])
def test_bad_specs_are_rejected_with_the_field_named(data, needle):
    with pytest.raises(SpecError, match=needle):
        spec_from_dict(data)


def test_unreadable_spec_file_is_named(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("steps: [unclosed")
    with pytest.raises(SpecError, match="broken.yaml"):
        load_spec(path)


def test_the_spec_holds_the_one_economic_schedule_that_settlement_applies():
    """``economics`` is settlement's own ``EconomicTerms``: every term of it (the jackpot's
    included) is set in the spec, and a term settlement refuses is refused with the spec."""
    from verification.settlement import EconomicTerms

    spec = spec_from_dict({"preset": "minimal", "economics": {"jackpot_bps": 0, "challenger_bond": 700}})
    assert type(spec.economics) is EconomicTerms
    assert (spec.economics.jackpot_bps, spec.economics.challenger_bond) == (0, 700)
    assert spec_from_dict({"preset": "minimal"}).economics == EconomicTerms()
    with pytest.raises(SpecError, match="economics.solver_stake must be a non-negative integer, got 1.5"):
        spec_from_dict({"preset": "minimal", "economics": {"solver_stake": 1.5}})
    with pytest.raises(SpecError, match=r"\['compute_cost'\] are top-level fields of the job spec now"):
        spec_from_dict({"preset": "minimal", "economics": {"compute_cost": 800}})
    assert spec_from_dict({"preset": "minimal", "compute_cost": 900}).compute_cost == 900
    with pytest.raises(SpecError, match="slash_reward_bps \\+ slash_burn_bps"):
        spec_from_dict({"preset": "minimal", "economics": {"slash_reward_bps": 9_000, "slash_burn_bps": 2_000}})


def test_protocol_nouns_are_typed_and_read_as_their_strings():
    """``mode``, ``spot_check_policy`` and ``hash_name`` are StrEnum members however they are given,
    and a member is its string: records, JSON and job ids are those of the plain strings."""
    import dataclasses
    import json

    from proofs.types import HashName
    from verification.spec import Mode, Policy, spec_to_dict

    spec = spec_from_dict({"preset": "minimal", "mode": "reproducible", "spot_check_policy": "interval",
                           "hash_name": "blake3"})
    assert (spec.mode, spec.spot_check_policy, spec.hash_name) == (Mode.REPRODUCIBLE, Policy.INTERVAL,
                                                                  HashName.BLAKE3)
    assert type(dataclasses.replace(spec, mode="exact").mode) is Mode  # a string from code converts too
    assert json.dumps(spec_to_dict(spec)["mode"]) == '"reproducible"' and spec.mode == "reproducible"
    assert compute_job_id(spec) == compute_job_id(spec_from_dict(json.loads(json.dumps(spec_to_dict(spec))),
                                                                  base=get_preset("minimal")))
    with pytest.raises(SpecError, match="mode 'exactt' is not one of"):
        spec_from_dict({"preset": "minimal", "mode": "exactt"})


def test_a_spec_hands_out_the_hash_context_of_its_hash_name():
    """The spec keeps the name (its JSON form); the context it resolves to is the one every root is
    hashed with."""
    from proofs.hashing import BLAKE3, SHA256

    assert get_preset("minimal").hashing is SHA256
    assert spec_from_dict({"preset": "minimal", "hash_name": "blake3"}).hashing is BLAKE3
