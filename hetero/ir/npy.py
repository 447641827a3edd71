"""Reading a user's .npy file without trusting it: the header is read first, its shape checked
against a size limit and its data size against the file's before anything is allocated; no
pickled objects. Every problem is one UserError naming the file and what the file was for."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from hetero.errors import UserError

#: Numbers one .npy file a user hands hetero (inputs, calibration data, labels) may hold: 1 GiB
#: as float64.
MAX_VALUES = 1 << 27


def load_npy(path: str | Path, what: str = "inputs", max_values: int = MAX_VALUES) -> np.ndarray:
    """The array in ``path`` (``numpy.save``'s format 1.0 or 2.0, numbers only) of at most
    ``max_values`` values. ``what`` names the file's role in messages ("inputs file",
    "calibration file", "labels file"): missing, empty, truncated, oversized, an .npz archive,
    or not .npy at all is a UserError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} file not found")
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            if f.read(4) == b"PK\x03\x04":
                raise UserError(f"{path}: {what} file is an .npz archive; save one array with "
                                "numpy.save (.npy)")
            f.seek(0)
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]}; numbers are "
                                 "saved as 1.0 or 2.0")
            offset = f.tell()
        if dtype.hasobject:
            raise ValueError("it holds Python objects; save an array of numbers")
        count = math.prod(shape)
        if count > max_values:
            raise UserError(f"{path}: {count:,} values (shape {list(shape)}); a {what} file "
                            f"holds at most {max_values:,}")
        have, need = path.stat().st_size - offset, count * dtype.itemsize
        if have < need:
            raise UserError(f"{path}: truncated: its header says shape {list(shape)} of {dtype} "
                            f"({need:,} bytes), the file holds {have:,}")
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: not a numpy .npy file ({msg})") from None
