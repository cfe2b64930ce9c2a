"""Helpers shared by the settlement tests."""

from __future__ import annotations

from verification.settlement.ledger import Ledger


def dump(ledger: Ledger) -> list[list[tuple]]:
    """Every row of every ledger table: equal dumps mean an untouched database."""
    return [
        ledger._conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        for table in ("transactions", "postings", "accounts")
    ]
