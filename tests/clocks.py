"""A fake clock for the dispute game's chess clocks: it moves only when a test moves it, so no
test's outcome depends on how fast (or how loaded) the machine is."""

from __future__ import annotations


class FakeClock:
    def __init__(self) -> None:
        self.time = 0.0

    def __call__(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds

    def timeout_for(self, remaining: float) -> float:
        """Real seconds the chess clock waits for an answer: the budget plus slack for a loaded
        machine (a hung party still forfeits, a few seconds later)."""
        return remaining + SLACK_S


SLACK_S = 5.0
