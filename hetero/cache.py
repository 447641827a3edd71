"""Where hetero keeps what it can reuse: Verilator builds, synthesis results, run logs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$HETERO_CACHE_DIR``, or ``~/.cache/hetero``."""
    base = os.environ.get("HETERO_CACHE_DIR")
    return Path(base) if base else Path.home() / ".cache" / "hetero"
