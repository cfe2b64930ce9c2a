"""Settlement: who is paid, who is slashed, recorded in a double-entry SQLite ledger.

`settle_job` is the entry point: it funds new parties, escrows payment, stakes and bonds, and applies
the verification verdicts of a job, once (GitHub issue 5). The rules are pure functions in
`verification.settlement.rules`; the ledger is `verification.settlement.ledger`; the incentive
simulator (when does cheating or verifying pay) is `verification.settlement.incentives`.
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
from verification.settlement.rules import (
    ChallengeWindowOpen,
    EconomicTerms,
    InvalidJobError,
    InvalidTermsError,
    InvalidVerdictError,
    SolverVerdict,
    is_forced_error,
)
from verification.settlement.settle import (
    SettlementResult,
    is_job_settled,
    lock_job,
    settle_job,
)

__all__ = [
    "BURN",
    "JACKPOT",
    "MINT",
    "AccountId",
    "ChallengeWindowOpen",
    "EconomicTerms",
    "IdempotencyConflict",
    "InsufficientFunds",
    "InvalidIdentifierError",
    "InvalidJobError",
    "InvalidTermsError",
    "InvalidTransferError",
    "InvalidVerdictError",
    "Ledger",
    "LedgerError",
    "LedgerSchemaError",
    "Posting",
    "SettlementResult",
    "SolverVerdict",
    "TokenAmount",
    "Transaction",
    "Transfer",
    "get_bond_escrow",
    "get_party_account",
    "get_payment_escrow",
    "get_stake_escrow",
    "is_forced_error",
    "is_job_settled",
    "lock_job",
    "settle_job",
]
