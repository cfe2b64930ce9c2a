"""A dispute transcript as rounds: who answered what, and what each round settled."""

from __future__ import annotations

from verification.report import TranscriptRound, compute_transcript_rounds


def move(party: str, kind: str, **payload) -> dict:
    return {"party": party, "kind": kind, "payload": payload}


A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_rounds_close_on_each_narrow_and_on_the_ruling():
    transcript = {"moves": [
        move("solver", "reveal-checkpoint", index=0, root=A),
        move("solver", "reveal-checkpoint", index=4, root=B),
        move("solver", "reveal-checkpoint", index=2, root=A),
        move("challenger", "narrow", level="checkpoints", lo=2, hi=4),
        move("solver", "commit-steps", start=16, end=24, root=C),  # not a position: left out
        move("solver", "reveal-checkpoint", index=2, root=A),  # shown in round 1: not repeated
        move("solver", "reveal-checkpoint", index=4, root=C),  # another answer than in round 1: shown
        move("solver", "reveal-step", step=20, root=A),
        move("challenger", "reveal-step", step=20, root=A),
        move("solver", "reveal-step", step=22, root=B),
        move("challenger", "reveal-step", step=22, root=C),
        move("challenger", "narrow", level="steps", lo=20, hi=22),
        move("solver", "reveal-op", index=33, digest=A),
        move("challenger", "reveal-op", index=33, digest=A),
        move("challenger", "narrow", level="operators", lo=34, hi=69),
        move("solver", "reveal-op", index=68, digest=B),
        move("challenger", "reveal-op", index=68, digest=C),
        move("referee", "rule", step=21, index=68, operator="aten.add.Tensor", winner="challenger"),
    ]}
    assert compute_transcript_rounds(transcript) == [
        TranscriptRound(1, "checkpoints",
                        "checkpoint 0 solver aaaaaaaa · checkpoint 2 solver aaaaaaaa · checkpoint 4 solver bbbbbbbb",
                        "agree at checkpoint 2, differ at checkpoint 4"),
        TranscriptRound(2, "steps", "checkpoint 4 solver cccccccc · step 20 both aaaaaaaa · "
                        "step 22 solver bbbbbbbb ≠ challenger cccccccc", "agree at step 20, differ at step 22"),
        TranscriptRound(3, "operators", "op 33 both aaaaaaaa", "agree after op 33, differ after op 68"),
        TranscriptRound(4, "referee", "op 68 solver bbbbbbbb ≠ challenger cccccccc",
                        "challenger wins: aten.add.Tensor (op 68) at step 21"),
    ]


def test_positions_sort_by_number_and_a_forfeit_ends_the_game():
    transcript = {"moves": [
        move("solver", "reveal-step", step=100, root=A),
        move("solver", "reveal-step", step=9, root=A),
        move("challenger", "narrow", level="operators", lo=0, hi=3),
        move("solver", "forfeit", reason="timed out answering step_root(12)"),
    ]}
    first, last = compute_transcript_rounds(transcript)
    assert first.answers == "step 9 solver aaaaaaaa · step 100 solver aaaaaaaa"
    assert first.outcome == "agree before op 0, differ after op 2"
    assert last == TranscriptRound(2, "forfeit", "-", "solver forfeits: timed out answering step_root(12)")


def test_a_ruling_on_a_whole_step_names_the_step():
    (only,) = compute_transcript_rounds({"moves": [move("referee", "rule", step=7, winner="solver")]})
    assert only.outcome == "solver wins: step 7 re-executed"
