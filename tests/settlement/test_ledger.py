"""The SQLite ledger: double entry, idempotency, atomicity, funds, concurrency."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.settlement.support import dump
from verification.settlement.accounts import (
    BURN,
    JACKPOT,
    MINT,
    AccountId,
    InvalidIdentifierError,
    InvalidTransferError,
    TokenAmount,
    Transfer,
    get_bond_escrow,
    get_party_account,
    get_payment_escrow,
    get_stake_escrow,
)
from verification.settlement.ledger import (
    IdempotencyConflict,
    InsufficientFunds,
    Ledger,
    LedgerSchemaError,
    Posting,
    Transaction,
    compute_postings,
)

REPO = Path(__file__).resolve().parents[2]
ALICE = AccountId("party:alice")
BOB = AccountId("party:bob")


def mint(key: str, account: AccountId, amount: int) -> Transaction:
    return Transaction(key, "genesis", (Transfer(MINT, account, TokenAmount(amount), "mint"),))


def pay(key: str, source: AccountId, dest: AccountId, amount: int, job: str | None = None):
    return Transaction(key, "pay", (Transfer(source, dest, TokenAmount(amount), "pay"),), job)


@pytest.fixture
def ledger():
    with Ledger(":memory:") as ledger:
        ledger.post(mint("genesis:alice", ALICE, 100))
        yield ledger


def test_account_names():
    assert get_party_account("alice") == "party:alice"
    assert get_payment_escrow("j1") == "escrow:j1:payment"
    assert get_stake_escrow("j1", "s1") == "escrow:j1:stake:s1"
    assert get_bond_escrow("j1", "v1") == "escrow:j1:bond:v1"


@pytest.mark.parametrize("bad", ["", "a:b", ":"])
def test_ids_with_the_separator_are_rejected(bad):
    with pytest.raises(InvalidIdentifierError, match="must not contain"):
        get_party_account(bad)
    with pytest.raises(InvalidIdentifierError):
        get_payment_escrow(bad)


@pytest.mark.parametrize("amount", [0, -5, 1.5, True])
def test_transfer_amount_must_be_a_positive_int(amount):
    with pytest.raises(InvalidTransferError, match="positive int"):
        Transfer(ALICE, BOB, amount, "x")


def test_self_transfer_is_rejected():
    with pytest.raises(InvalidTransferError, match="both 'party:alice'"):
        Transfer(ALICE, ALICE, TokenAmount(1), "x")


def test_transfer_is_two_postings_summing_to_zero():
    debit, credit = compute_postings(Transfer(ALICE, BOB, TokenAmount(7), "m"))
    assert (debit, credit) == (Posting(ALICE, -7, "m"), Posting(BOB, 7, "m"))


def test_mint_is_minus_supply(ledger):
    assert ledger.balance(MINT) == -100
    assert ledger.supply() == ledger.minted() == 100
    assert ledger.balance(ALICE) == 100
    assert ledger.balance(AccountId("party:nobody")) == 0


def test_transfer_moves_balance_and_conserves_supply(ledger):
    ledger.post(pay("t1", ALICE, BOB, 30))
    ledger.post(pay("t2", BOB, BURN, 10))
    assert ledger.balance(ALICE) == 70
    assert ledger.balance(BOB) == 20
    assert ledger.burned() == 10
    assert ledger.supply() == 100


def test_postings_of_every_transaction_sum_to_zero(ledger):
    ledger.post(pay("t1", ALICE, BOB, 30))
    rows = ledger._conn.execute("SELECT tx_id, SUM(amount) FROM postings GROUP BY tx_id")
    assert all(total == 0 for _, total in rows)


def test_same_key_is_a_no_op_returning_the_stored_transaction(ledger):
    first = ledger.post(pay("t1", ALICE, BOB, 30, job="j"))
    before = dump(ledger)
    again = ledger.post(Transaction(first.key, first.kind, first.transfers, first.job_id, tick=99))
    assert again == first  # the stored tick wins
    assert dump(ledger) == before
    assert ledger.has_transaction("t1")
    assert not ledger.has_transaction("t2")


def test_same_key_with_other_transfers_is_a_conflict(ledger):
    ledger.post(pay("t1", ALICE, BOB, 30))
    with pytest.raises(IdempotencyConflict, match="'t1'"):
        ledger.post(pay("t1", ALICE, BOB, 31))


def test_insufficient_funds_names_account_and_amounts_and_writes_nothing(ledger):
    before = dump(ledger)
    with pytest.raises(InsufficientFunds) as error:
        ledger.post(pay("t1", ALICE, BOB, 101))
    assert (error.value.account, error.value.balance, error.value.required) == (ALICE, 100, 101)
    assert "party:alice" in str(error.value) and "101" in str(error.value)
    assert dump(ledger) == before


def test_funds_are_checked_per_transaction_net(ledger):
    # Bob has nothing, but the transaction credits him before he pays on: net he is not negative
    tx = Transaction(
        "t1",
        "pay",
        (
            Transfer(ALICE, BOB, TokenAmount(50), "in"),
            Transfer(BOB, JACKPOT, TokenAmount(50), "out"),
        ),
    )
    ledger.post(tx)
    assert ledger.balance(BOB) == 0
    assert ledger.balance(JACKPOT) == 50


def test_a_failing_transaction_in_a_batch_rolls_back_the_whole_batch(ledger):
    before = dump(ledger)
    with pytest.raises(InsufficientFunds):
        ledger.post_all([pay("t1", ALICE, BOB, 60), pay("t2", ALICE, BOB, 60)])
    assert dump(ledger) == before


def test_crash_between_postings_leaves_the_database_untouched():
    calls = []

    def crash_on_third(transaction, posting):
        calls.append(posting)
        if len(calls) == 3:
            raise RuntimeError("injected crash")

    with Ledger(":memory:", on_posting=crash_on_third) as ledger:
        before = dump(ledger)
        transfers = (
            Transfer(MINT, ALICE, TokenAmount(10), "a"),
            Transfer(MINT, BOB, TokenAmount(10), "b"),
        )
        with pytest.raises(RuntimeError, match="injected crash"):
            ledger.post(Transaction("genesis", "genesis", transfers))
        assert len(calls) == 3
        assert dump(ledger) == before
        assert not ledger.has_transaction("genesis")


def test_process_killed_mid_transaction_leaves_the_file_untouched(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        ledger.post(mint("genesis:alice", ALICE, 100))
        before = dump(ledger)
    script = textwrap.dedent(
        f"""
        import os
        from verification.settlement.accounts import AccountId, TokenAmount, Transfer
        from verification.settlement.ledger import Ledger, Transaction

        def die(transaction, posting):
            if posting.amount > 0:
                os._exit(3)  # no rollback, no close: the process just stops

        ledger = Ledger({str(path)!r}, on_posting=die)
        a, b = AccountId("party:alice"), AccountId("party:bob")
        ledger.post(Transaction("t1", "pay", (Transfer(a, b, TokenAmount(5), "x"),)))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True)
    assert done.returncode == 3, done.stderr.decode()
    with Ledger(path) as ledger:
        assert dump(ledger) == before
        assert ledger.supply() == 100


def test_nested_atomic_block_rolls_back_to_its_savepoint(ledger):
    with ledger.atomic():
        ledger.post(pay("t1", ALICE, BOB, 10))
        with pytest.raises(InsufficientFunds):
            with ledger.atomic():
                ledger.post(pay("t2", BOB, ALICE, 5))
                ledger.post(pay("t3", ALICE, BOB, 1_000))
    assert ledger.has_transaction("t1")
    assert not ledger.has_transaction("t2")
    assert ledger.balance(BOB) == 10


def test_balances_by_prefix_include_emptied_accounts(ledger):
    escrow = get_payment_escrow("job_1")
    ledger.post(pay("t1", ALICE, escrow, 40, job="job_1"))
    ledger.post(pay("t2", escrow, BOB, 40, job="job_1"))
    # '_' is a LIKE wildcard: the prefix must be matched literally
    ledger.post(pay("t3", ALICE, get_payment_escrow("jobX1"), 1, job="jobX1"))
    assert ledger.balances("escrow:job_1:") == {escrow: 0}
    assert set(ledger.balances()) == {MINT, ALICE, BOB, escrow, get_payment_escrow("jobX1")}


def test_history_reads_transfers_back_in_order(ledger):
    transfers = (
        Transfer(ALICE, BOB, TokenAmount(3), "first"),
        Transfer(BOB, BURN, TokenAmount(2), "second"),
        Transfer(ALICE, JACKPOT, TokenAmount(1), "third"),
    )
    stored = ledger.post(Transaction("t1", "pay", transfers, "j1", tick=7))
    ledger.post(pay("t2", ALICE, BOB, 1, job="j2"))
    assert ledger.history("j1") == [stored]
    assert ledger.get_transaction("t1") == Transaction("t1", "pay", transfers, "j1", 7)
    assert [tx.key for tx in ledger.history()] == ["genesis:alice", "t1", "t2"]
    assert ledger.get_transaction("missing") is None


def test_empty_transaction_is_recorded(ledger):
    ledger.post(Transaction("marker", "genesis", ()))
    assert ledger.has_transaction("marker")
    assert ledger.get_transaction("marker").transfers == ()


def test_file_ledger_uses_wal_and_survives_reopen(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        ledger.post(mint("genesis:alice", ALICE, 100))
        (mode,) = ledger._conn.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"
    with Ledger(path) as ledger:
        assert ledger.balance(ALICE) == 100


def test_unknown_schema_version_is_rejected(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=42")
    with pytest.raises(LedgerSchemaError, match="schema version 42"):
        Ledger(path)


def _worker(path: str, worker: int, n: int) -> None:
    with Ledger(path, busy_timeout_s=60) as ledger:
        for i in range(n):
            # every worker also retries the shared keys: exactly one write of each must win
            ledger.post(mint(f"shared:{i}", ALICE, 1))
            ledger.post(mint(f"own:{worker}:{i}", AccountId(f"party:w{worker}"), 1))


def test_several_processes_write_one_file(tmp_path):
    path = str(tmp_path / "ledger.sqlite")
    Ledger(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(path, w, 25)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
    assert [process.exitcode for process in workers] == [0, 0, 0, 0]
    with Ledger(path) as ledger:
        assert ledger.balance(ALICE) == 25
        assert all(ledger.balance(AccountId(f"party:w{w}")) == 25 for w in range(4))
        assert ledger.supply() == ledger.minted() == 125
