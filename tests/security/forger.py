"""A plug-in that signs its commitment with a forged signature: on import (in its own process) it
replaces the solver's signing function with one that returns 96 arbitrary bytes. A commitment
whose signature does not verify must cost the solver its stake, not block the job's settlement."""

from __future__ import annotations

from dataclasses import dataclass, replace

import verification.solver as solver
from verification.strategies import Honest

GENUINE = solver.sign_message


def forge(message, secret_key, signer, backend):
    return replace(GENUINE(message, secret_key, signer, backend), signature=b"\x01" * 96)


solver.sign_message = forge


@dataclass(frozen=True)
class ForgesItsSignature(Honest):
    name: str = "forges-its-signature"
