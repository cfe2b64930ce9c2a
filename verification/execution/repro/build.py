"""Build reproducible mode's fused C++ kernels ahead of time (``make venv`` calls this).

``python -m verification.execution.repro.build`` compiles ``fused.cpp`` into the extension cache
(``verification.execution.repro.fused``) and exits 0; when the build fails it says why and exits
0 too, since the pure-torch path gives the same bits (``--strict`` exits 1 instead).
"""

from __future__ import annotations

import sys
import time

from verification.execution.repro import fused


def main(argv: list[str]) -> int:
    strict = "--strict" in argv
    start = time.perf_counter()
    try:
        module = fused.build_extension(verbose="--verbose" in argv)
    except Exception as exc:  # noqa: BLE001 - reported, and the torch path stays available
        print(f"reproducible mode: fused kernels not built ({type(exc).__name__}: {exc}); "
              "the pure-torch path will run (same bits, slower)", file=sys.stderr)
        return 1 if strict else 0
    print(f"reproducible mode: fused kernels ready ({module.__file__}, {time.perf_counter() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
