"""Opening a file that is not this ledger changes nothing in it and names it."""

import sqlite3

import pytest

from verification.settlement import Ledger, LedgerError, LedgerSchemaError


def test_a_file_that_is_not_sqlite_is_named_and_left_as_it_was(tmp_path):
    path = tmp_path / "ledger.sqlite"
    path.write_bytes(b"this is not a database, just some bytes" * 4)
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="ledger.sqlite"):
        Ledger(path)
    assert path.read_bytes() == before


def test_a_ledger_of_another_version_keeps_its_journal_mode(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=42")
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(LedgerSchemaError, match="schema version 42"):
        Ledger(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 42
