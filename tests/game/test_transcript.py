"""The transcript's hash chain: a replayed, reordered, altered, truncated, appended or rebuilt
transcript no longer verifies against the head the report anchors, and loading it names the file
and the first bad move."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from proofs.hashing import SHA256, get_hashing
from proofs.messages import GAME_MOVES, RevealCheckpoint, message_from_json, message_id
from verification.dispute import (
    KIND_OF_MESSAGE,
    MOVE_KINDS,
    TRANSCRIPT_SCHEMA,
    TranscriptError,
    compute_move_id,
    get_move_message,
    load_transcript,
    save_transcript,
    verify_transcript,
)
from verification.strategies import Honest, OpCorrupt

from .conftest import play

CHEATER = OpCorrupt(step=10, op=7)  # the cheater of test_rules: its run is trained once per session


@pytest.fixture(scope="module")
def played(game_program, game_runs, honest_run):
    """``(transcript, head)`` of one whole game, and the head as the report carries it."""
    game, result = play(game_program, game_runs(CHEATER), CHEATER, honest_run, Honest())
    return game.transcript(result), result.to_report()["transcript_head"]


def rechain(transcript: dict) -> dict:
    """``transcript`` with every index, link and id recomputed, and its result's head updated:
    what a forger who rewrites the whole chain produces."""
    rebuilt, previous = copy.deepcopy(transcript), ""
    for index, move in enumerate(rebuilt["moves"]):
        move.update(index=index, previous=previous)
        move["move_id"] = previous = compute_move_id(index, move["status"], move["party"], move["kind"],
                                                     move["payload"], move["elapsed_s"], previous,
                                                     get_hashing(rebuilt["hash_name"]))
    rebuilt["result"]["transcript_head"] = previous
    return rebuilt


def saved(tmp_path, transcript: dict) -> str:
    return save_transcript(tmp_path / "transcript.json", transcript)


def test_a_played_transcript_verifies_against_the_head_in_the_report(played, tmp_path):
    transcript, head = played
    assert transcript["schema"] == TRANSCRIPT_SCHEMA and transcript["hash_name"] == "sha256"
    assert head == transcript["moves"][-1]["move_id"] == transcript["result"]["transcript_head"]
    assert verify_transcript(transcript) and verify_transcript(transcript, head)
    assert load_transcript(saved(tmp_path, transcript), head) == json.loads(json.dumps(transcript))


def test_a_copy_of_an_earlier_move_is_a_replay(played, tmp_path):
    transcript, head = copy.deepcopy(played[0]), played[1]
    transcript["moves"].append(copy.deepcopy(transcript["moves"][2]))
    path = saved(tmp_path, transcript)
    with pytest.raises(TranscriptError, match="replays move #2") as raised:
        load_transcript(path, head)
    assert path in str(raised.value)


def test_a_move_that_follows_an_earlier_move_is_a_replay(played, tmp_path):
    """A replayed move given a fresh index and id still points back to the move it first followed."""
    transcript, head = copy.deepcopy(played[0]), played[1]
    moves, replay = transcript["moves"], copy.deepcopy(transcript["moves"][3])
    replay["index"] = len(moves)
    replay["move_id"] = compute_move_id(replay["index"], replay["status"], replay["party"], replay["kind"],
                                        replay["payload"], replay["elapsed_s"], replay["previous"], SHA256)
    moves.append(replay)
    with pytest.raises(TranscriptError, match=f"position {len(moves) - 1} is replayed: it follows move #2, "):
        load_transcript(saved(tmp_path, transcript), head)


@pytest.mark.parametrize("renumbered", [False, True], ids=["as-is", "renumbered"])
def test_swapped_moves_are_out_of_order(played, tmp_path, renumbered):
    transcript, head = copy.deepcopy(played[0]), played[1]
    moves = transcript["moves"]
    moves[3], moves[4] = moves[4], moves[3]
    if renumbered:
        moves[3]["index"], moves[4]["index"] = 3, 4
    with pytest.raises(TranscriptError, match="move at position 3 is out of order"):
        load_transcript(saved(tmp_path, transcript), head)


def test_an_altered_payload_no_longer_hashes_to_its_id(played, tmp_path):
    transcript, head = copy.deepcopy(played[0]), played[1]
    move = transcript["moves"][1]
    move["payload"]["root"] = "00" * 32
    with pytest.raises(TranscriptError, match=f"move #1 .* was altered: .* not to its id {move['move_id']}"):
        load_transcript(saved(tmp_path, transcript), head)


def test_a_truncated_transcript_misses_the_anchored_head(played, tmp_path):
    transcript, head = copy.deepcopy(played[0]), played[1]
    del transcript["moves"][-3:]
    assert not verify_transcript(transcript)
    with pytest.raises(TranscriptError, match=f"anchored head is '{head}': moves were dropped"):
        load_transcript(saved(tmp_path, transcript), head)


def test_a_truncated_file_cannot_be_read(played, tmp_path):
    path = tmp_path / "transcript.json"
    path.write_text(json.dumps(played[0])[:-40])
    with pytest.raises(TranscriptError, match="cannot be read") as raised:
        load_transcript(path, played[1])
    assert str(path) in str(raised.value)


def test_a_chain_rebuilt_from_scratch_is_caught_only_by_the_report_anchor(played, tmp_path):
    """A forger who alters a move and rewrites every id (and the head in the file) gets a
    transcript consistent with itself; the head in the report still tells."""
    original, head = played
    altered = copy.deepcopy(original)
    altered["moves"][1]["payload"]["root"] = "00" * 32
    rebuilt = rechain(altered)
    assert verify_transcript(rebuilt)
    assert not verify_transcript(rebuilt, head)
    with pytest.raises(TranscriptError, match=f"head {rebuilt['moves'][-1]['move_id']}, but the anchored head is '{head}'"):
        load_transcript(saved(tmp_path, rebuilt), head)
    # Without rewriting the head its result records, the file does not even verify against itself.
    rebuilt["result"]["transcript_head"] = head
    assert not verify_transcript(rebuilt)


def test_appended_moves_are_named(played, tmp_path):
    transcript, head = copy.deepcopy(played[0]), played[1]
    last = copy.deepcopy(transcript["moves"][-1])
    transcript["moves"].append({**last, "payload": {**last["payload"], "winner": "solver"}})
    with pytest.raises(TranscriptError, match=f"moves after #{len(played[0]['moves']) - 1} were appended"):
        load_transcript(saved(tmp_path, rechain(transcript)), head)


def test_a_result_that_contradicts_the_last_move_does_not_verify(played):
    transcript = copy.deepcopy(played[0])
    transcript["result"]["winner"] = "solver"
    assert not verify_transcript(transcript)


# -- the moves are messages ---------------------------------------------------------------------
def test_every_move_of_a_game_carries_a_message_of_its_kind(game_program, game_runs, honest_run):
    game, result = play(game_program, game_runs(CHEATER), CHEATER, honest_run, Honest())
    transcript = game.transcript(result)
    for move, stored in zip(game.moves, transcript["moves"], strict=True):
        assert type(move.message) in GAME_MOVES and move.party in MOVE_KINDS[move.kind][1]
        assert get_move_message(stored["kind"], stored["payload"]) == move.message  # what the file holds
        assert message_id(message_from_json(type(move.message), stored["payload"])) == message_id(move.message)
    kinds = {m.kind for m in game.moves}
    assert {"reveal-checkpoint", "narrow", "commit-steps", "reveal-step", "commit-ops", "reveal-op", "open-op",
            "rule"} <= kinds


def test_every_message_class_is_a_kind_of_move():
    assert set(KIND_OF_MESSAGE) == set(GAME_MOVES)


@pytest.mark.parametrize("change, error", [
    (lambda move: move["payload"].update(root="zz"), "carries no valid move message: field root must be hex"),
    (lambda move: move["payload"].pop("index"), "carries no valid move message: a RevealCheckpoint has fields"),
    (lambda move: move.update(kind="reveal-nothing"), "carries no valid move message: kind 'reveal-nothing'"),
    (lambda move: move.update(party="challenger"), "is made by 'challenger', who cannot make it"),
])
def test_a_rechained_move_that_carries_no_valid_message_is_named(played, tmp_path, change, error):
    """A forger who rewrites the chain around a move that is no valid message still fails its load."""
    transcript = copy.deepcopy(played[0])
    move = transcript["moves"][0]
    assert move["kind"] == "reveal-checkpoint" and move["party"] == "solver"
    change(move)
    rebuilt = rechain(transcript)
    with pytest.raises(TranscriptError, match=f"move #0 .*{error}"):
        load_transcript(saved(tmp_path, rebuilt))


def test_the_game_records_a_move_only_from_a_party_that_may_make_it(game_program, game_runs, honest_run):
    from verification.dispute import GameError

    game, _ = play(game_program, game_runs(CHEATER), CHEATER, honest_run, Honest())
    with pytest.raises(GameError, match="referee cannot make a reveal-checkpoint move"):
        game.record("referee", RevealCheckpoint(0, b"\x00" * 32))


# -- properties ----------------------------------------------------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                    max_leaves=6)
FIELDS = ("index", "status", "party", "kind", "payload", "elapsed_s", "previous", "move_id")


@st.composite
def mutations(draw, moves: list) -> list:
    """``moves`` after one random change to one move: a field set to another value, a move
    dropped, a copy of a move inserted anywhere, or a move taken out and put back elsewhere."""
    mutated, position = copy.deepcopy(moves), draw(st.integers(0, len(moves) - 1))
    action = draw(st.sampled_from(["set", "drop", "replay", "move"]))
    if action == "set":
        name = draw(st.sampled_from(FIELDS))
        value = draw(JSON | st.dictionaries(st.text(max_size=4), JSON, max_size=3) if name == "payload" else JSON)
        assume(value != mutated[position][name] or type(value) is not type(mutated[position][name]))
        mutated[position][name] = value
    elif action == "drop":
        del mutated[position]
    elif action == "replay":
        mutated.insert(draw(st.integers(0, len(moves))), copy.deepcopy(mutated[position]))
    else:
        move = mutated.pop(position)
        target = draw(st.integers(0, len(moves) - 1))
        assume(target != position)
        mutated.insert(target, move)
    return mutated


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_single_move_mutation_is_detected(played, data):
    transcript, head = played
    mutated = {**transcript, "moves": data.draw(mutations(transcript["moves"]))}
    assert not verify_transcript(mutated, head)
    assert not verify_transcript(mutated)


@settings(max_examples=100, deadline=None)
@given(junk=JSON)
def test_verify_never_raises_on_junk(junk):
    assert verify_transcript(junk) is False
    assert verify_transcript({"schema": TRANSCRIPT_SCHEMA, "hash_name": "sha256", "result": {}, "moves": [junk]}) is False
