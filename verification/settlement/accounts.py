"""Accounts and transfers of the settlement ledger.

Terms
-----
TokenAmount
    A whole number of token units. Amounts are integers everywhere (never floats), so that
    conservation of supply is exact.
AccountId
    The name of a ledger account. The chart of accounts is:

    ``mint``
        The issuer. Minting moves tokens from ``mint`` to a party, so the balance of ``mint`` is
        minus the supply ever minted; it is the only account allowed to go negative.
    ``burn``
        Tokens taken out of circulation (a slashed share). Burning is a transfer into this account,
        never a destruction, so total supply stays an invariant and the burned amount is readable.
    ``jackpot``
        The treasury that pays verifiers who find forced errors (Truebit, Teutsch & Reitwießner 2017,
        §4.1 "Jackpots"), funded by a tax on each job (§4.2 "Taxes").
    ``party:<id>``
        The free balance of a party: a submitter, a solver, a verifier or a challenger.
    ``escrow:<job>:payment``
        The submitter's payment for a job (solver payments, verifier fees and jackpot tax), held
        until settlement.
    ``escrow:<job>:stake:<solver>``
        A solver's stake for a job (Truebit §4.3 "Deposits").
    ``escrow:<job>:bond:<challenger>``
        A challenger's bonds for the disputes it opened in a job (one bond per dispute).
Transfer
    A movement of ``amount`` from ``source`` to ``dest``. In the double-entry ledger it is two
    postings, ``-amount`` on ``source`` and ``+amount`` on ``dest``, so every transaction sums to zero.

Identifiers (job, party and solver ids) may not contain ``:``, the separator of account names;
otherwise ``escrow:a:stake:b`` could name two different accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

from proofs.types import JobId, PartyId, SolverId

TokenAmount = NewType("TokenAmount", int)
AccountId = NewType("AccountId", str)

MINT = AccountId("mint")
BURN = AccountId("burn")
JACKPOT = AccountId("jackpot")

PARTY_PREFIX = "party:"
ESCROW_PREFIX = "escrow:"
ACCOUNT_SEPARATOR = ":"


class InvalidIdentifierError(ValueError):
    """An id cannot be used in an account name (empty, or contains the separator ``:``)."""


class InvalidTransferError(ValueError):
    """A transfer that the ledger cannot record (non-positive or non-integer amount, self-transfer)."""


@dataclass(frozen=True)
class Transfer:
    """Move ``amount`` token units from account ``source`` to account ``dest``; ``memo`` says why."""

    source: AccountId
    dest: AccountId
    amount: TokenAmount
    memo: str

    def __post_init__(self) -> None:
        # Rule: amounts are positive integers (a zero movement is no movement; floats are never amounts)
        if type(self.amount) is not int or self.amount <= 0:
            raise InvalidTransferError(
                f"transfer {self.source} -> {self.dest} ({self.memo!r}): amount must be a positive "
                f"int, got {self.amount!r}"
            )
        # Rule: a transfer moves tokens between two different accounts
        if self.source == self.dest:
            raise InvalidTransferError(
                f"transfer ({self.memo!r}): source and dest are both {self.source!r}"
            )


def is_valid_identifier(identifier: str) -> bool:
    """Whether ``identifier`` can be embedded in an account name."""
    return bool(identifier) and ACCOUNT_SEPARATOR not in identifier


def check_identifier(kind: str, identifier: str) -> str:
    """Return ``identifier``, or raise `InvalidIdentifierError` naming ``kind`` and the value."""
    if not is_valid_identifier(identifier):
        raise InvalidIdentifierError(
            f"{kind} id {identifier!r} is not usable in an account name: it must be non-empty and "
            f"must not contain {ACCOUNT_SEPARATOR!r}"
        )
    return identifier


def get_party_account(party: PartyId | SolverId) -> AccountId:
    """The free-balance account of a party (a solver is a party too)."""
    return AccountId(PARTY_PREFIX + check_identifier("party", party))


def get_job_escrow_prefix(job_id: JobId) -> str:
    """The prefix shared by every escrow account of ``job_id``."""
    return f"{ESCROW_PREFIX}{check_identifier('job', job_id)}{ACCOUNT_SEPARATOR}"


def get_payment_escrow(job_id: JobId) -> AccountId:
    """The account holding the submitter's payment for ``job_id`` until settlement."""
    return AccountId(get_job_escrow_prefix(job_id) + "payment")


def get_stake_escrow(job_id: JobId, solver: SolverId) -> AccountId:
    """The account holding ``solver``'s stake for ``job_id``."""
    return AccountId(f"{get_job_escrow_prefix(job_id)}stake:{check_identifier('solver', solver)}")


def get_bond_escrow(job_id: JobId, challenger: PartyId) -> AccountId:
    """The account holding ``challenger``'s bonds for the disputes it opened in ``job_id``."""
    return AccountId(
        f"{get_job_escrow_prefix(job_id)}bond:{check_identifier('challenger', challenger)}"
    )


def get_party_of_account(account: AccountId) -> PartyId | None:
    """The party owning a ``party:<id>`` account, or None for any other account."""
    if account.startswith(PARTY_PREFIX):
        return PartyId(account[len(PARTY_PREFIX) :])
    return None
