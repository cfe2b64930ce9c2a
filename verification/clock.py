"""Chess-clock budgets in units of work, so that a machine that slows down does not make an honest
party forfeit (issue #14, "Fair clocks"). ``verification.dispute.ChessClock`` keeps the clocks;
this module holds the budget and the pure rules it applies.

Terms
-----
reference
    A piece of honest work the coordinator can run and time at any moment of a game: one honest
    step of the job from ``S_0`` (``verification.lifecycle.measure_step_seconds``). A *reference
    function* returns its wall seconds *now*; a measurement is one call of it.
unit
    What a budget counts: one reference's worth of work (``STEP``), or, for a declared budget,
    one wall second (``SECOND``, never re-measured). An answer that took ``e`` wall seconds while
    one unit took ``r`` seconds costs ``e / r`` units (``compute_charge``).
budget
    A party's allowance for all its answers in one game, in units (``Budget.units``), with the
    reference's seconds when it was set (``Budget.reference_s``, the job's first measurement). A
    uniform slowdown of the machine multiplies a party's seconds and the reference's alike, so an
    honest party's units do not change; a party that does more work than its budget, or none at
    all (hung), still runs out.
epoch
    The time between two measurements. Answers are charged provisionally at the latest
    measurement; a new measurement closes the epoch and charges its seconds at the slower of the
    two references at its ends (the party gets the benefit of the doubt about when in the epoch
    the machine slowed down).
re-measurement
    Before a party is declared out of time (its answers add up to more than its budget, or an
    answer is not back by its deadline), the clock measures the reference again and closes the
    epoch; the party forfeits only if it is still out of time. Each party gets at most
    ``MAX_REMEASURES`` re-measurements in a game, and a measurement counts for at most
    ``MAX_SLOWDOWN`` times the first (``compute_reference_s``), so a hung party is cut off within
    ``units · MAX_SLOWDOWN · reference_s`` wall seconds plus ``MAX_REMEASURES`` measurements.

Arbitrum BoLD (Alvarez et al., "BoLD: Fast and Cheap Dispute Resolution", 2024) likewise gives each
side of a dispute a chess clock, and counts it, like its challenge period, in L1 blocks (the
parent chain's ``block.number``), not in seconds: time is measured in the progress of the machine
that runs the game, so congestion that slows every party does not spend anyone's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Unit(StrEnum):
    """What a budget counts (its value is the name a transcript records)."""

    SECOND = "s"  # a declared budget: wall seconds, never re-measured
    STEP = "step"  # a derived budget: one honest step of the job, re-measured


SECOND, STEP = Unit.SECOND, Unit.STEP
REFERENCES = {  # what one unit of a budget is, as a transcript names it
    SECOND: "one wall second (a declared budget, never re-measured)",
    STEP: "one honest step of the job from S_0, timed by the coordinator",
}
MAX_REMEASURES = 4  # re-measurements of the reference one party may cause in a game
MAX_SLOWDOWN = 100.0  # a measurement counts for at most this many times the first one
MIN_REFERENCE_S = 1e-6  # a measurement counts for at least this (a timer's resolution)


@dataclass(frozen=True)
class Budget:
    """``units`` of work, one unit being a ``unit`` (``STEP`` or ``SECOND``) that took
    ``reference_s`` wall seconds when the budget was set."""

    units: float
    unit: Unit = SECOND
    reference_s: float = 1.0

    @classmethod
    def of_seconds(cls, seconds: float) -> Budget:
        """A fixed budget of ``seconds`` wall seconds (a declared ``party_time_budget_s``)."""
        return cls(seconds, SECOND, 1.0)

    @property
    def seconds(self) -> float:
        """The budget in wall seconds at the reference it was set with."""
        return self.units * self.reference_s

    def describe(self) -> str:
        """``0.50s`` or ``1210.0 steps``, as a forfeit reason names the budget."""
        return describe_units(self.units, self.unit)

    def to_record(self) -> dict[str, float | str]:
        return {"units": self.units, "unit": self.unit, "reference_s": self.reference_s}


def describe_units(units: float, unit: Unit) -> str:
    """``units`` of ``unit`` in words: seconds as ``0.50s``, steps as ``12.3 steps``."""
    return f"{units:.2f}s" if unit == SECOND else f"{units:.1f} {unit}s"


def compute_budget_units(floor_s: float, slack: float, steps: int, step_s: float) -> float:
    """Units (honest steps) of a derived budget: ``floor_s / step_s + slack · steps``."""
    # Rule: a derived budget is the floor (process start, imports, messages) converted at the
    # measured step, plus ``slack`` times the steps a party's moves need.
    return floor_s / compute_reference_s(step_s) + slack * steps


def compute_reference_s(measured_s: float, first_s: float | None = None,
                        max_slowdown: float = MAX_SLOWDOWN) -> float:
    """The seconds a measurement counts for: at least ``MIN_REFERENCE_S`` and, after the first
    measurement ``first_s``, at most ``max_slowdown · first_s``."""
    # Rule: a measurement counts for at most ``max_slowdown`` times the first, so that a party
    # that loads the machine (or a machine that stalls) cannot extend a clock without bound.
    ceiling = float("inf") if first_s is None else max_slowdown * first_s
    return min(max(measured_s, MIN_REFERENCE_S), ceiling)


def compute_charge(seconds: float, before_s: float, after_s: float) -> float:
    """Units charged for ``seconds`` answered between measurements ``before_s`` and ``after_s``."""
    # Rule: an epoch's seconds are charged at the slower of the references at its two ends.
    return seconds / max(before_s, after_s)


def compute_remaining_units(budget_units: float, charged_units: float) -> float:
    """Units a party has left."""
    return max(budget_units - charged_units, 0.0)


def compute_wait_seconds(remaining_units: float, reference_s: float) -> float:
    """Wall seconds the clock waits for an answer: the party's remaining units at the latest reference."""
    # Rule: an answer is due within the party's remaining units at the latest measurement.
    return remaining_units * reference_s


def is_over_budget(budget_units: float, charged_units: float) -> bool:
    """Whether a party's answers add up to more than its budget."""
    return charged_units > budget_units


def is_out_of_time(budget_units: float, charged_units: float) -> bool:
    """Whether a party's charge has used its budget (to a relative ``1e-9``, so that a budget
    spent exactly by a wait is spent)."""
    return charged_units >= budget_units * (1 - 1e-9)
