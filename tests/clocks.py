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
