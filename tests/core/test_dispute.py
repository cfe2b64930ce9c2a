import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verification.dispute import (
    TRANSITIONS,
    DisputeGame,
    GameError,
    Status,
    compute_dissection_points,
    compute_game_round_bound,
    compute_narrowed,
    compute_round_bound,
)


@given(lo=st.integers(0, 1000), span=st.integers(2, 5000), k=st.integers(2, 40))
def test_dissection_points_are_interior_sorted_and_at_most_k_minus_1(lo, span, k):
    points = compute_dissection_points(lo, lo + span, k)
    assert points == sorted(set(points))
    assert all(lo < p < lo + span for p in points)
    assert 1 <= len(points) <= k - 1


@given(n=st.integers(1, 5000), k=st.integers(2, 40), data=st.data())
@settings(max_examples=200)
def test_bisection_finds_the_first_divergence_within_the_round_bound(n, k, data):
    """Simple legacy routine (linear scan) vs the optimized k-ary one."""
    first_bad = data.draw(st.integers(1, n))
    lo, hi, rounds = 0, n, 0
    while hi - lo > 1:
        points = compute_dissection_points(lo, hi, k)
        lo, hi = compute_narrowed(lo, hi, {p: p < first_bad for p in points})
        rounds += 1
    assert (lo, hi) == (first_bad - 1, first_bad)
    assert rounds <= compute_round_bound(n, k)


def test_round_bound_is_ceil_log():
    assert compute_round_bound(1, 2) == 0
    assert compute_round_bound(12, 2) == 4
    assert compute_round_bound(40, 40) == 1
    assert compute_round_bound(41, 40) == 2


def test_state_machine_only_moves_forward():
    order = list(Status)
    for (src, _), dst in TRANSITIONS.items():
        assert order.index(dst) >= order.index(src)
    game = DisputeGame.__new__(DisputeGame)
    game.status = Status.RESOLVED
    with pytest.raises(GameError):
        game.transition("narrow")


def test_game_round_bound_sums_the_three_levels():
    # T = 10,000 steps, a checkpoint every 100, 54 operator records per step, binary dissection.
    assert compute_game_round_bound(10_000, 100, 54, 2) == 7 + 7 + 6
    assert compute_game_round_bound(10_000, 100, 54, 40) == 2 + 2 + 2
