"""SHA-256 state roots in one C call, with :mod:`proofs.encoding`'s Python path as the fallback.

``merkle.c`` hashes the same bytes in the same order as :func:`proofs.encoding.state_root` (the
Python side hands it the domain prefixes, header leaves and chunk plan, so the format is defined
once, in ``proofs.encoding``), through OpenSSL's libcrypto, with the interpreter lock released.
It exists for small states: the default job's 38 KB state takes about forty hash calls besides
the one pass over its bytes, and in Python those calls cost twice the pass. ``tests/proofs``
holds both paths to the same roots on arbitrary states.

The module is compiled once per source, Python and compiler into ``$PINPOINT_NATIVE_DIR``
(default ``~/.cache/pinpoint/native``), behind a file lock so that parallel test workers build it
once; ``python -m proofs.native`` builds it ahead of time (``make venv`` does). It needs a C
compiler, Python's headers and libcrypto's (``openssl/sha.h``); when the build fails a
:class:`NativeHashWarning` says why and the Python path runs, with the same roots.
``PINPOINT_NATIVE_HASH=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import sysconfig
import threading
import warnings
from pathlib import Path
from types import ModuleType

ENV_SWITCH = "PINPOINT_NATIVE_HASH"
ENV_DIR = "PINPOINT_NATIVE_DIR"
SOURCE = Path(__file__).with_name("merkle.c")
MODULE_NAME = "_pinpoint_merkle"
CFLAGS = ("-O3", "-shared", "-fPIC", "-Wall", "-Wno-deprecated-declarations")
LIBS = ("-lcrypto",)


class NativeHashWarning(UserWarning):
    """The C state root could not be built or loaded; the Python path runs (same roots)."""


class NativeBuildError(RuntimeError):
    """The compiler failed; the message holds its last lines of output."""


def is_switched_on(env_switch: str) -> bool:
    """Whether a native part is allowed: its environment switch is anything but ``0``."""
    return os.environ.get(env_switch, "1") != "0"


def get_cache_dir(env_dir: str, name: str) -> Path:
    """Where a native part is built: ``$env_dir`` if set, else ``$XDG_CACHE_HOME/pinpoint/name``
    (``~/.cache/pinpoint/name``)."""
    if os.environ.get(env_dir):
        return Path(os.environ[env_dir])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "pinpoint" / name


def is_enabled() -> bool:
    return is_switched_on(ENV_SWITCH)


def get_build_root() -> Path:
    return get_cache_dir(ENV_DIR, "native")


def get_compiler() -> list[str]:
    return (sysconfig.get_config_var("CC") or "cc").split()


def compute_build_key(source: str) -> str:
    """What the built module depends on: the source, the compiler and flags, the Python."""
    parts = [source, " ".join(get_compiler() + list(CFLAGS) + list(LIBS)), sys.version,
             str(sysconfig.get_config_var("EXT_SUFFIX"))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive ``flock`` on ``path`` (released by the kernel if the holder dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_module(source: str | None = None, root: Path | None = None) -> ModuleType:
    """Compile (or load the already compiled) module; raises :class:`NativeBuildError` or
    ``OSError`` on failure."""
    source = SOURCE.read_text() if source is None else source
    key = compute_build_key(source)
    build_dir = (root or get_build_root()) / key
    target = build_dir / f"{MODULE_NAME}{sysconfig.get_config_var('EXT_SUFFIX') or '.so'}"
    with locked(build_dir.with_suffix(".lock")):
        if not target.exists():
            build_dir.mkdir(parents=True, exist_ok=True)
            src, partial = build_dir / "merkle.c", build_dir / f"{target.name}.partial"
            src.write_text(source)
            command = [*get_compiler(), *CFLAGS, f"-I{sysconfig.get_paths()['include']}", str(src),
                       "-o", str(partial), *LIBS]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
                raise NativeBuildError(f"{' '.join(command[:1])} exited {done.returncode}: {tail}")
            os.replace(partial, target)  # a module is there whole or not at all
    loader = importlib.machinery.ExtensionFileLoader(MODULE_NAME, str(target))
    spec = importlib.util.spec_from_file_location(MODULE_NAME, target, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


_STATE: dict[str, ModuleType | None] = {}
_BUILDING = threading.Lock()


def get_module() -> ModuleType | None:
    """The loaded module, or None (switched off, or its build failed: warned once)."""
    if not is_enabled():
        return None
    try:
        return _STATE["module"]
    except KeyError:
        pass
    with _BUILDING:
        if "module" not in _STATE:
            try:
                _STATE["module"] = build_module()
            except Exception as exc:  # noqa: BLE001 - any failure means: use the Python path
                warnings.warn(f"native state root unavailable ({type(exc).__name__}: {exc}); using the "
                              "Python path (same roots, slower on small states)", NativeHashWarning, stacklevel=2)
                _STATE["module"] = None
        return _STATE["module"]


def reset() -> None:
    """Forget the loaded module (tests)."""
    _STATE.clear()


def main(argv: list[str]) -> int:
    """Build ahead of time; exits 0 when the build fails too (the Python path gives the same
    roots) unless ``--strict``."""
    try:
        module = build_module()
    except Exception as exc:  # noqa: BLE001 - reported, and the Python path stays available
        print(f"native state root not built ({type(exc).__name__}: {exc}); the Python path will run "
              "(same roots)", file=sys.stderr)
        return 1 if "--strict" in argv else 0
    print(f"native state root ready ({module.__file__})")
    return 0
