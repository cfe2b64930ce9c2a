"""Settlement: who is paid, who is slashed, recorded in a double-entry SQLite ledger (GitHub issue 5).

The ledger is `verification.settlement.ledger`; account names are `verification.settlement.accounts`.
"""

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
    LedgerError,
    LedgerSchemaError,
    Posting,
    Transaction,
)

__all__ = [
    "BURN",
    "JACKPOT",
    "MINT",
    "AccountId",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidIdentifierError",
    "InvalidTransferError",
    "Ledger",
    "LedgerError",
    "LedgerSchemaError",
    "Posting",
    "TokenAmount",
    "Transaction",
    "Transfer",
    "get_bond_escrow",
    "get_party_account",
    "get_payment_escrow",
    "get_stake_escrow",
]
