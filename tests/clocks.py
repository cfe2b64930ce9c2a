"""Fakes for the dispute game's chess clocks: a clock that moves only when a test moves it, and a
reference (the work one budget unit is) whose seconds a test sets, so no test's outcome depends on
how fast (or how loaded) the machine is."""

from __future__ import annotations


class FakeClock:
    def __init__(self, slack_s: float | None = None) -> None:
        self.time = 0.0
        self.slack_s = SLACK_S if slack_s is None else slack_s
        self.waits: list[float] = []  # the clock seconds of every wait for an answer, in order

    def __call__(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds

    def timeout_for(self, remaining: float) -> float:
        """Real seconds the chess clock waits for an answer: the budget plus slack for a loaded
        machine (a hung party still forfeits, a few seconds later)."""
        self.waits.append(remaining)
        return remaining + self.slack_s


SLACK_S = 5.0


class FakeMachine:
    """A machine whose speed a test sets: one honest step takes ``step_s`` seconds on the fake
    ``clock``. ``work(steps)`` is a party computing (the clock moves by ``steps · step_s``); calling
    the machine is the coordinator timing its reference (one honest step: it returns ``step_s``,
    counted in ``measurements``, and the clock moves too, as a real measurement takes time).
    ``slow_down_after`` makes the machine ``factor`` times slower once that much work was done
    (another process starts on it)."""

    def __init__(self, clock: FakeClock, step_s: float = 0.01) -> None:
        self.clock = clock
        self.step_s = step_s
        self.measurements = 0
        self.done = 0.0  # steps of party work so far
        self.slowdowns: list[tuple[float, float]] = []  # (after steps of work, factor)

    def slow_down(self, factor: float, after: float = 0.0) -> None:
        self.slowdowns.append((after, factor))
        self.apply()

    def apply(self) -> None:
        for after, factor in [s for s in self.slowdowns if self.done >= s[0]]:
            self.step_s *= factor
            self.slowdowns.remove((after, factor))

    def work(self, steps: float) -> None:
        self.clock.advance(steps * self.step_s)
        self.done += steps
        self.apply()

    def __call__(self) -> float:
        self.measurements += 1
        self.clock.advance(self.step_s)
        return self.step_s
