"""``python -m proofs.native``: build the C state root ahead of time (see :mod:`proofs.native`)."""

import sys

from proofs.native import main

sys.exit(main(sys.argv[1:]))
