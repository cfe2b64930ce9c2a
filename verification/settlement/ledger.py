"""A double-entry token ledger in SQLite.

Terms
-----
Transaction
    A set of transfers recorded together under a unique idempotency key. Each transfer is two
    postings (``-amount`` on the source, ``+amount`` on the destination), so the postings of every
    transaction sum to zero and the sum over all accounts is always zero: minting is a transfer out of
    ``mint``, burning a transfer into ``burn`` (see `verification.settlement.accounts`).
Posting
    One signed line of a transaction on one account. A balance is the sum of an account's postings.
Idempotency key
    The unique name of a transaction (``lock:<job>``, ``settle:<job>``, ...). Recording a transaction
    whose key is already stored writes nothing and returns the stored transaction, so re-running a
    pipeline step (re-materializing a Dagster asset) never pays twice. Reusing a key for a *different*
    transaction raises `IdempotencyConflict`: it is a bug in the caller, not a retry.
Supply
    The sum of the balances of every account but ``mint`` (parties, escrow, jackpot and burn). It
    always equals the amount ever minted, minus the balance of ``mint``.

Atomicity: `Ledger.atomic` opens ``BEGIN IMMEDIATE`` (one writer at a time, readers unblocked in WAL
mode) and commits on exit or rolls back on any exception, so a settlement made of several transactions
is written entirely or not at all. Nested blocks are savepoints. Several processes (Dagster's
multiprocess executor) may share one ledger file: WAL journal plus a busy timeout make them queue
rather than fail. Balances are kept in an ``accounts`` table updated by a trigger on every posting, in
the same SQL transaction, so a balance read is one row lookup.

The design follows the usual double-entry bookkeeping of payment ledgers; the rules that decide the
transfers live in `verification.settlement.rules`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from proofs.types import JobId
from verification.settlement.accounts import BURN, MINT, AccountId, TokenAmount, Transfer

SCHEMA_VERSION = 1
MEMORY = ":memory:"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS transactions (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        job_id TEXT,
        tick INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS transactions_job ON transactions(job_id)",
    """CREATE TABLE IF NOT EXISTS postings (
        id INTEGER PRIMARY KEY,
        tx_id INTEGER NOT NULL REFERENCES transactions(id),
        transfer_index INTEGER NOT NULL,
        account TEXT NOT NULL,
        amount INTEGER NOT NULL CHECK (amount != 0),
        memo TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS postings_tx ON postings(tx_id)",
    """CREATE TABLE IF NOT EXISTS accounts (
        account TEXT PRIMARY KEY,
        balance INTEGER NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS postings_update_balance AFTER INSERT ON postings BEGIN
        INSERT INTO accounts(account, balance) VALUES (NEW.account, NEW.amount)
        ON CONFLICT(account) DO UPDATE SET balance = balance + NEW.amount;
    END""",
)


class LedgerError(Exception):
    """Base class of the ledger's errors."""


class InsufficientFunds(LedgerError):
    """A transaction would leave an account other than ``mint`` with a negative balance."""

    def __init__(self, key: str, account: AccountId, balance: int, required: int) -> None:
        super().__init__(
            f"transaction {key!r}: account {account!r} holds {balance} but must pay out {required} "
            f"(short by {required - balance}); nothing was written"
        )
        self.key = key
        self.account = account
        self.balance = balance
        self.required = required


class IdempotencyConflict(LedgerError):
    """A key is already stored for a different transaction."""


class LedgerSchemaError(LedgerError):
    """The database file holds a ledger of an unknown schema version."""


@dataclass(frozen=True)
class Transaction:
    """Transfers recorded together under the unique idempotency ``key``.

    ``kind`` names the rule that produced them (``genesis``, ``lock``, ``settle``, ...); ``job_id``
    the job they belong to (None for party funding); ``tick`` the logical time at which they were
    recorded, when the caller has a clock.
    """

    key: str
    kind: str
    transfers: tuple[Transfer, ...]
    job_id: JobId | None = None
    tick: int | None = None


@dataclass(frozen=True)
class Posting:
    """One signed line of a transaction: ``amount`` added to ``account`` (negative: taken)."""

    account: AccountId
    amount: int
    memo: str


def compute_postings(transfer: Transfer) -> tuple[Posting, Posting]:
    """The two postings of a transfer: debit of the source, credit of the destination."""
    return (
        Posting(transfer.source, -transfer.amount, transfer.memo),
        Posting(transfer.dest, transfer.amount, transfer.memo),
    )


def compute_net_changes(transfers: Sequence[Transfer]) -> dict[AccountId, int]:
    """Net change of each account touched by ``transfers``."""
    changes: dict[AccountId, int] = {}
    for transfer in transfers:
        for posting in compute_postings(transfer):
            changes[posting.account] = changes.get(posting.account, 0) + posting.amount
    return changes


def is_same_transaction(stored: Transaction, requested: Transaction) -> bool:
    """Whether ``requested`` is a retry of ``stored`` (the tick of a retry may differ)."""
    return (stored.key, stored.kind, stored.job_id, stored.transfers) == (
        requested.key,
        requested.kind,
        requested.job_id,
        requested.transfers,
    )


class Ledger:
    """A double-entry ledger stored in the SQLite file ``path`` (``":memory:"`` for tests).

    ``on_posting`` is called after each posting is written, inside the SQL transaction; an exception
    it raises rolls back everything written by the enclosing `atomic` block. Tests use it to inject a
    crash between two postings.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout_s: float = 30.0,
        on_posting: Callable[[Transaction, Posting], None] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self._on_posting = on_posting
        self._depth = 0
        self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
        try:
            self._check_version()  # before any PRAGMA that changes the file
            if self.path != MEMORY:
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._create_schema()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise LedgerError(f"ledger {self.path!r} is not a usable SQLite ledger: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise

    def _check_version(self) -> None:
        (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        # Rule: only a ledger of this schema version (or an empty file) is opened
        if version not in (0, SCHEMA_VERSION):
            raise LedgerSchemaError(f"ledger {self.path!r} has schema version {version}, expected {SCHEMA_VERSION}")

    def _create_schema(self) -> None:
        with self.atomic():
            self._check_version()  # again under the write lock: another process may have created it
            for statement in _SCHEMA:
                self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        """Close the connection; the ledger object is unusable afterwards."""
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Run the block as one SQL transaction: all of its writes are committed, or none.

        The outermost block takes the write lock at once (``BEGIN IMMEDIATE``), so reads inside it
        (balances, whether a key exists) cannot be invalidated by another process before the commit.
        """
        savepoint = f"sp{self._depth}"
        self._conn.execute("BEGIN IMMEDIATE" if self._depth == 0 else f"SAVEPOINT {savepoint}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            self._rollback(savepoint)
            raise
        self._depth -= 1
        try:
            self._conn.execute("COMMIT" if self._depth == 0 else f"RELEASE {savepoint}")
        except BaseException:
            self._rollback(savepoint)
            raise

    def _rollback(self, savepoint: str) -> None:
        # SQLite may already have rolled back by itself (disk full, I/O error): nothing left to undo
        if not self._conn.in_transaction:
            return
        if self._depth == 0:
            self._conn.execute("ROLLBACK")
        else:
            self._conn.execute(f"ROLLBACK TO {savepoint}")
            self._conn.execute(f"RELEASE {savepoint}")

    def post(self, transaction: Transaction) -> Transaction:
        """Record ``transaction`` (a no-op returning the stored one if its key exists)."""
        (stored,) = self.post_all((transaction,))
        return stored

    def post_all(self, transactions: Sequence[Transaction]) -> tuple[Transaction, ...]:
        """Record ``transactions`` in order, in one SQL transaction; return what is stored."""
        with self.atomic():
            return tuple(self._post_one(transaction) for transaction in transactions)

    def _post_one(self, transaction: Transaction) -> Transaction:
        stored = self.get_transaction(transaction.key)
        if stored is not None:
            # Rule: idempotency — a stored key is a no-op, unless the caller reuses it for other transfers
            if not is_same_transaction(stored, transaction):
                raise IdempotencyConflict(
                    f"transaction key {transaction.key!r} is already stored with other content: "
                    f"stored {stored}, requested {transaction}"
                )
            return stored
        self._check_funds(transaction)
        cursor = self._conn.execute(
            "INSERT INTO transactions(key, kind, job_id, tick) VALUES (?, ?, ?, ?)",
            (transaction.key, transaction.kind, transaction.job_id, transaction.tick),
        )
        for index, transfer in enumerate(transaction.transfers):
            for posting in compute_postings(transfer):
                self._conn.execute(
                    "INSERT INTO postings(tx_id, transfer_index, account, amount, memo) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (cursor.lastrowid, index, posting.account, posting.amount, posting.memo),
                )
                if self._on_posting is not None:
                    self._on_posting(transaction, posting)
        return transaction

    def _check_funds(self, transaction: Transaction) -> None:
        for account, change in compute_net_changes(transaction.transfers).items():
            # Rule: no account but the issuer may end a transaction with a negative balance
            if account != MINT and change < 0:
                balance = self.balance(account)
                if balance + change < 0:
                    raise InsufficientFunds(transaction.key, account, balance, -change)

    def balance(self, account: AccountId) -> TokenAmount:
        """Current balance of ``account`` (0 for an account never posted to)."""
        row = self._conn.execute(
            "SELECT balance FROM accounts WHERE account = ?", (account,)
        ).fetchone()
        return TokenAmount(row[0] if row else 0)

    def balances(self, prefix: str | None = None) -> dict[AccountId, TokenAmount]:
        """Balances of every account ever posted to (zero ones included), optionally by name prefix."""
        if prefix:
            # a range on the primary key: names starting with prefix sort in [prefix, next prefix)
            upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
            rows = self._conn.execute(
                "SELECT account, balance FROM accounts WHERE account >= ? AND account < ? "
                "ORDER BY account",
                (prefix, upper),
            )
        else:
            rows = self._conn.execute("SELECT account, balance FROM accounts ORDER BY account")
        return {AccountId(account): TokenAmount(balance) for account, balance in rows}

    def supply(self) -> TokenAmount:
        """Sum of the balances of every account but ``mint``: parties, escrow, jackpot and burn."""
        (total,) = self._conn.execute(
            "SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE account != ?", (MINT,)
        ).fetchone()
        return TokenAmount(total)

    def minted(self) -> TokenAmount:
        """Total ever minted: minus the balance of ``mint``."""
        return TokenAmount(-self.balance(MINT))

    def burned(self) -> TokenAmount:
        """Total ever burned: the balance of ``burn``."""
        return self.balance(BURN)

    def has_transaction(self, key: str) -> bool:
        """Whether a transaction with idempotency key ``key`` is stored."""
        row = self._conn.execute("SELECT 1 FROM transactions WHERE key = ?", (key,)).fetchone()
        return row is not None

    def get_transaction(self, key: str) -> Transaction | None:
        """The stored transaction with idempotency key ``key``, if any."""
        found = self._read_transactions("WHERE t.key = ?", (key,))
        return found[0] if found else None

    def history(self, job_id: JobId | None = None) -> list[Transaction]:
        """Stored transactions in the order they were recorded, all or those of ``job_id``."""
        if job_id is None:
            return self._read_transactions("", ())
        return self._read_transactions("WHERE t.job_id = ?", (job_id,))

    def _read_transactions(self, where: str, args: tuple[object, ...]) -> list[Transaction]:
        rows = self._conn.execute(
            "SELECT t.id, t.key, t.kind, t.job_id, t.tick, p.transfer_index, p.account, p.amount, "
            f"p.memo FROM transactions t LEFT JOIN postings p ON p.tx_id = t.id {where} "
            "ORDER BY t.id, p.transfer_index, p.amount",
            args,
        ).fetchall()
        headers: dict[int, tuple[str, str, str | None, int | None]] = {}
        legs: dict[int, list[tuple[str, int, str]]] = {}
        for tx_id, key, kind, job, tick, _index, account, amount, memo in rows:
            headers[tx_id] = (key, kind, job, tick)
            if account is not None:
                legs.setdefault(tx_id, []).append((account, amount, memo))
        return [
            Transaction(
                key=key,
                kind=kind,
                transfers=compute_transfers_from_legs(legs.get(tx_id, [])),
                job_id=JobId(job) if job is not None else None,
                tick=tick,
            )
            for tx_id, (key, kind, job, tick) in headers.items()
        ]


def compute_transfers_from_legs(legs: Sequence[tuple[str, int, str]]) -> tuple[Transfer, ...]:
    """Rebuild transfers from their postings, stored as (debit, credit) pairs in transfer order."""
    return tuple(
        Transfer(AccountId(debit[0]), AccountId(credit[0]), TokenAmount(credit[1]), credit[2])
        for debit, credit in zip(legs[0::2], legs[1::2], strict=True)
    )
