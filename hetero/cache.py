"""Where hetero keeps what it can reuse: Verilator builds, synthesis results, run logs; and the
rules its writers follow so that a killed hetero never leaves a half entry or a running tool.

- :func:`cache_dir` gives a sub-folder of the cache, created, or raises UserError (exit 2) when
  the cache cannot be written (read-only, a file in the way);
- an entry is written beside its final name and renamed into place (:func:`publish`), so a
  reader sees a whole entry or none;
- :func:`valid_executable` tells whether a cached executable can still be run;
- :func:`die_with_parent` (a ``preexec_fn``) makes a tool process die with hetero, even when
  hetero is killed with SIGKILL."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from hetero.errors import UserError


def cache_root() -> Path:
    """``$HETERO_CACHE_DIR``, or ``~/.cache/hetero``."""
    base = os.environ.get("HETERO_CACHE_DIR")
    return Path(base) if base else Path.home() / ".cache" / "hetero"


def cache_dir(*parts: str) -> Path:
    """``cache_root()/parts...``, created and writable. Raises UserError (exit 2, one line
    naming the folder) when it cannot be created or written: a file in its place, a read-only
    cache."""
    path = cache_root().joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{path}: the cache folder is a file (remove it or set "
                        "HETERO_CACHE_DIR)") from None
    except OSError as e:
        raise UserError(f"{path}: cannot create the cache folder ({e.strerror}; set "
                        "HETERO_CACHE_DIR)") from None
    try:  # a real write: os.access says yes to root on a read-only mount
        os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=path))
    except OSError as e:
        raise UserError(f"{path}: the cache folder is not writable ({e.strerror}; set "
                        "HETERO_CACHE_DIR)") from None
    return path


def publish(tmp: Path, entry: Path) -> bool:
    """Move the finished ``tmp`` (file or folder, on the same file system) to ``entry`` in one
    rename. When ``entry`` exists already (another writer won) ``tmp`` is removed and the
    existing entry kept. Returns whether ``tmp`` became the entry."""
    try:
        if tmp.is_dir() and not tmp.is_symlink():
            os.rename(tmp, entry)  # fails on a non-empty existing folder: the other writer won
        else:
            os.replace(tmp, entry)
        return True
    except OSError:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        return False


def valid_executable(path: Path) -> bool:
    """Whether ``path`` is a complete, runnable executable (on Linux: an ELF file with the exec
    bit); a truncated or emptied cache entry is not."""
    try:
        if not path.is_file() or not os.access(path, os.X_OK):
            return False
        if sys.platform.startswith("linux"):
            with open(path, "rb") as f:
                return f.read(4) == b"\x7fELF" and path.stat().st_size > 1024
        return path.stat().st_size > 0
    except OSError:
        return False


def die_with_parent() -> None:
    """``preexec_fn`` for tool processes: on Linux the child gets SIGKILL when hetero dies, so a
    killed hetero leaves no tool writing into the cache (elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
