"""What isolating the parties costs (``verification.parties``).

Group ``isolation``: one whole dispute game of the tiny MLP job (``T = 100``, ``k = 10``, an
``op_corrupt`` cheater, arity 2) with both parties as in-process providers (``parties =
in-process``: the old, unisolated shape) and with each party in its own process (``parties =
processes``: what every job now runs), so the report's ratio is the price of isolation for one
game: two process starts, each party building its own program, and every answer encoded and
decoded across a pipe. ``test_party_start`` is one party process started, asked once and closed.
"""

from __future__ import annotations

import pytest

from benchmarks.test_bench_dispute import JOBS, get_cheater
from proofs.encoding import trace_root
from proofs.types import PartyId, SolverId
from verification.dispute import DisputeGame
from verification.parties import RemoteProvider, run_in_party
from verification.providers import TraceProvider, build_trace_provider
from verification.spec import SolverSpec
from verification.strategies import Honest, resolve_strategy

T = 100
HONEST = SolverSpec(SolverId("verifier"), "honest")


@pytest.fixture(scope="module")
def isolation_job(bench_program, bench_run, bench_dataset):
    program = bench_program("mlp", 4, steps=T, checkpoint_interval=JOBS[T], batch_size=8)
    cheater = get_cheater(T)
    return (program, bench_dataset(program.spec), cheater, bench_run(program, cheater),
            bench_run(program, SolverSpec(SolverId("honest"), "honest")))


def make_providers(parties, program, dataset, cheater, run, replica):
    if parties == "in-process":
        return (TraceProvider(PartyId("cheater"), run, program, resolve_strategy(cheater.strategy, cheater.params)),
                TraceProvider(PartyId("verifier"), replica, program, Honest()))
    return (RemoteProvider("cheater", build_trace_provider, program.spec, dataset, run, cheater),
            RemoteProvider("verifier", build_trace_provider, program.spec, dataset, replica, HONEST))


@pytest.mark.benchmark(group="isolation")
@pytest.mark.parametrize("parties", ["in-process", "processes"])
def test_dispute_isolation(benchmark, isolation_job, parties):
    program, dataset, cheater, run, replica = isolation_job
    spec = program.spec

    def play():
        providers = make_providers(parties, program, dataset, cheater, run, replica)
        try:
            game = DisputeGame(program, *providers, trace_root(list(run.roots), spec.hashing), 2, 600.0)
            return game.play(spec.num_checkpoints - 1, spec.checkpoint_interval)
        finally:
            for provider in providers:
                getattr(provider, "close", lambda: None)()

    result = benchmark.pedantic(play, rounds=3)
    assert (result.winner, result.first_divergent_step) == ("challenger", cheater.params["step"])
    benchmark.extra_info.update(parties=parties, T=T, rounds=result.rounds)


def answer() -> int:
    return 0


@pytest.mark.benchmark(group="isolation")
def test_party_start(benchmark):
    assert benchmark.pedantic(run_in_party, args=("bench", answer), rounds=5) == 0
    benchmark.extra_info.update(parties="start")
