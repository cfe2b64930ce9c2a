"""The layers import downwards only, checked on the source (docs/design.md §1).

- The core (``datasets/``, ``proofs/``, ``verification/``) never imports Dagster.
- Execution (``verification/execution/``) and the referee know no party: they import none of the
  roles (solver, verifier, strategies, providers), the party processes or the lifecycle. Honest
  execution lives with the program (``verification.execution.program.honest_step``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("verification.solver", "verification.verifier", "verification.strategies", "verification.providers",
         "verification.parties", "verification.lifecycle", "verification.data_parallel", "verification.dispute")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (lazy imports included)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def sources(*parts: str) -> list[Path]:
    return sorted(p for part in parts for p in ((ROOT / part).rglob("*.py") if (ROOT / part).is_dir()
                                                 else [ROOT / part]))


@pytest.mark.parametrize("path", sources("datasets", "proofs", "verification"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_never_imports_dagster(path):
    assert not [m for m in imported_modules(path) if is_under(m, "dagster") or is_under(m, "pipelines")]


@pytest.mark.parametrize("path", sources("verification/execution", "verification/referee.py"),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_execution_and_the_referee_know_no_party(path):
    assert not [m for m in imported_modules(path) if any(is_under(m, role) for role in ROLES)]


def test_the_check_sees_a_role_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from verification.strategies import honest_step\n")
    assert "verification.strategies" in imported_modules(bad)
