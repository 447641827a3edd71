"""The end-to-end flows behind the CLI: compile a model, predict with the reference, and
``synth``: Verilog, cycle-accurate simulation against the reference, synthesis and a report."""

from __future__ import annotations

import errno
import glob
import json
import math
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from hetero import boards as boards_db
from hetero.cache import cache_dir
from hetero.ir.config import Config
from hetero.ir.npy import MAX_VALUES, load_npy
from hetero.errors import UserError
from hetero.passes.folding import FoldingTarget
from hetero.ir.graph import Graph
from hetero.frontend.onnx import import_onnx
from hetero.passes.pipeline import pipeline, run_pipeline
from hetero.reference import check_inputs, predict as reference_predict

Progress = Callable[[str], None]


def compile_model(model: str | Path, config: Config | str | Path | None = None,
                  board: boards_db.Board | str | None = None,
                  dump: Callable[[str, Graph], None] | None = None,
                  calibrate: np.ndarray | str | Path | None = None,
                  target: FoldingTarget = FoldingTarget()) -> Graph:
    """ONNX file to a typed graph with parallelism chosen (for ``target``, else the fastest
    that fits ``board``, else fully parallel; see :mod:`hetero.passes.folding`).
    ``calibrate``: a batch (or .npy file) that picks the ``auto`` and default precisions."""
    if not isinstance(config, Config):
        config = Config.load(config)
    if isinstance(board, str):
        board = boards_db.get(board)
    graph = import_onnx(model)
    if calibrate is not None:
        from hetero.passes.calibrate import calibrated_config, load_calibration

        config = calibrated_config(graph, load_calibration(calibrate, graph), config, board)
    return run_pipeline(graph, pipeline(config, board, target), dump=dump)


MAX_INPUT_VALUES = MAX_VALUES  # numbers in one batch of inputs: 1 GiB as float64


def load_inputs(path: str | Path) -> np.ndarray:
    """A .npy batch of inputs (:func:`hetero.ir.npy.load_npy`: numbers only, at most
    :data:`MAX_INPUT_VALUES` of them, header checked before loading); every problem is a
    UserError naming the file."""
    return load_npy(path, "inputs", MAX_INPUT_VALUES)


def predict(model: str | Path, x: np.ndarray, config: Config | str | Path | None = None,
            calibrate: np.ndarray | str | Path | None = None) -> np.ndarray:
    """The bit-accurate reference's outputs for the batch ``x`` (as real numbers; class indices
    where the hardware ends in argmax)."""
    return reference_predict(compile_model(model, config, calibrate=calibrate), x)


def random_inputs(graph: Graph, n: int, seed: int = 0) -> np.ndarray:
    """Standard-normal inputs (the scale of standardized features), reproducible by seed."""
    shape = graph.tensors[graph.inputs[0]].shape
    return np.random.default_rng(seed).standard_normal((n,) + shape)


def input_batch(graph: Graph, inputs: str | Path | np.ndarray | None, n: int | None,
                seed: int) -> np.ndarray:
    """The batch to run: ``inputs`` (array or .npy file, :func:`load_inputs`) truncated to
    ``n``, or ``n`` (default 100) inputs drawn with ``seed`` (0 to 2**32 - 1). Raises
    UserError naming the file or option: a negative ``n`` or ``seed``, an empty batch, random
    inputs of more than :data:`MAX_INPUT_VALUES` numbers (checked before allocating), or
    inputs whose per-sample shape is not the model's up to axes of size 1
    (:func:`hetero.reference.check_inputs`: never reshaped otherwise)."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
        raise UserError(f"-n must be a count of inferences (0 or more), got {n!r}")
    if isinstance(inputs, (str, Path)):
        x = check_inputs(graph, load_inputs(inputs), str(inputs))
    elif inputs is not None:
        x = check_inputs(graph, inputs)
    else:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
            raise UserError(f"--seed must be an integer from 0 to {2**32 - 1}, got {seed!r}")
        count = 100 if n is None else int(n)
        size = math.prod(graph.tensors[graph.inputs[0]].shape)
        if count * size > MAX_INPUT_VALUES:
            raise UserError(f"-n {count}: {count:,} random inputs of {size:,} values each exceed "
                            f"the {MAX_INPUT_VALUES:,} values a batch may hold")
        x = random_inputs(graph, count, seed)
    if n is not None:
        x = x[:n]
    if len(x) == 0:
        raise UserError(f"{inputs if inputs is not None else '-n'}: no inputs to simulate "
                        "(empty batch)")
    return x


@dataclass
class StageTimer:
    """Wall time per stage, reported to a progress callback as each stage starts."""

    progress: Progress | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.progress:
            self.progress(name)
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - t, 3)


#: The file hetero writes into every output folder it makes, listing what it wrote there; a
#: non-empty folder without it (or holding anything it does not list) is the user's, and never
#: replaced.
MARKER = ".hetero-output.json"


def check_output(out: str | Path) -> Path:
    """Pre-flight of an output folder, before any work: the absolute path ``out`` names (a
    symlink to a folder: that folder). Raises UserError (exit 2, one line) when ``out`` is a
    dangling symlink, a file, a non-empty folder hetero did not write (no :data:`MARKER`, or
    entries it does not list), or in a folder that cannot be written."""
    out = Path(out)
    if out.is_symlink():
        if not out.exists():
            raise UserError(f"{out}: output folder is a dangling symbolic link")
        out = out.resolve()
    out = Path(os.path.abspath(out))
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: output path exists and is not a folder")
    if out.is_dir():
        entries = {p.name for p in out.iterdir()}
        if entries:
            owned = _marker_files(out)
            if owned is None:
                raise UserError(f"{out}: folder holds files hetero did not write "
                                f"({min(entries)}, ...); choose a new or empty folder")
            foreign = sorted(entries - owned - {MARKER})
            if foreign:
                raise UserError(f"{out}: {foreign[0]} was not written by hetero; refusing to "
                                "replace the folder (move it away or choose another folder)")
        if not os.access(out, os.W_OK | os.X_OK):
            raise UserError(f"{out}: output folder is not writable")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{out}: cannot create the output folder ({parent} is not a folder)")
    try:  # a real write, not os.access: a read-only file system, root, ACLs all answer here
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=parent))
    except OSError as e:
        raise UserError(f"{out}: cannot write the output folder ({parent}: {e.strerror})") from None
    return out


def _marker_files(out: Path) -> set[str] | None:
    try:
        data = json.loads((out / MARKER).read_text())
        return set(data["files"]) if data.get("tool") == "hetero" else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def _out_lock(out: Path) -> Iterator[None]:
    """Exclusive lock of ``out`` against a second hetero writing it (a lock file beside it,
    removed afterwards); a second writer fails at once with UserError."""
    import fcntl

    lock = out.parent / f".{out.name}.lock"
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"{out}: cannot lock the output folder ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UserError(f"{out}: another hetero run is writing this folder; wait for it "
                            "or choose another -o") from None
        try:  # the holder before us may have removed the file it locked: lock the new one
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(lock)
        except OSError:
            pass
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), 2)  # RENAME_EXCHANGE
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it (other threads may be
    creating files)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: errno values of a write that failed for the place, not for hetero: one line, exit 2
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


@contextmanager
def atomic_output(out: str | Path) -> Iterator[Path]:
    """A scratch folder beside ``out`` that replaces ``out`` as a whole, in one rename, only
    when the block succeeds; on failure (or a signal) ``out`` keeps what it had and the scratch
    folder goes. Nothing of an earlier run survives in the new ``out``.

    Refuses (UserError, exit 2, before the block runs) what :func:`check_output` refuses, so a
    folder of the user's own files is never deleted; ``out`` is locked against a second hetero
    writing it (which fails at once); leftovers of a killed earlier run beside ``out``
    (``.OUT.partial-*``) are removed. A write that fails for lack of room or permission becomes a
    UserError naming ``out``; so does a file put into ``out`` while the block ran (the new
    output is then dropped, the user's file kept). Every folder made here holds :data:`MARKER`,
    listing its files."""
    out = check_output(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out}: cannot create the output folder ({e.strerror})") from None
    with _out_lock(out):
        for stale in out.parent.glob(f".{glob.escape(out.name)}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)  # a killed run's (we hold the lock)
        check_output(out)  # again, under the lock
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        except OSError as e:
            raise UserError(f"{out}: cannot write beside the output folder ({e.strerror})") from None
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would be the new OUT's mode
        try:
            try:
                yield tmp
                files = sorted(p.name for p in tmp.iterdir())
                (tmp / MARKER).write_text(json.dumps({"tool": "hetero", "files": files},
                                                     indent=1) + "\n")
                check_output(out)  # files the user put into OUT meanwhile are not replaced
                if out.is_dir():
                    if not _exchange(tmp, out):  # two renames: a crash between them leaves
                        # OUT missing (the old one beside it), never a mix
                        old = out.parent / f".{out.name}.partial-old-{os.getpid()}"
                        os.rename(out, old)
                        os.rename(tmp, out)
                        tmp = old
                else:
                    os.rename(tmp, out)
            except OSError as e:
                if e.errno in _WRITE_ERRORS:
                    raise UserError(f"{out}: cannot write the output ({e.strerror})") from None
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def check_output_file(out: str | Path, *inputs: str | Path | None) -> Path:
    """Pre-flight of an output file (``predict -o``), before any work: the absolute path to
    write. Raises UserError (exit 2, one line) when ``out`` is a folder, a dangling symbolic
    link, one of the command's ``inputs`` (the model, the inputs), or in a folder that is
    missing or cannot be written."""
    out = Path(out)
    if out.is_symlink() and not out.exists():
        raise UserError(f"{out}: output file is a dangling symbolic link")
    if out.is_dir():
        raise UserError(f"{out}: is a folder; -o takes the .npy file to write")
    real = Path(os.path.realpath(out))
    for path in inputs:
        if path is not None and Path(os.path.realpath(path)) == real:
            raise UserError(f"{out}: is an input of this command; refusing to overwrite it")
    parent = real.parent
    if not parent.is_dir():
        raise UserError(f"{out}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{out}: the folder {parent} is not writable")
    if out.exists() and not os.access(real, os.W_OK):
        raise UserError(f"{out}: the file is read-only")
    return real


def write_npy(out: str | Path, array: np.ndarray) -> None:
    """Write ``array`` to the .npy file ``out`` all at once: a scratch file beside it renamed
    over it, so ``out`` is the old file or the new one. A failing write (full disk, quota,
    file size limit) removes the scratch file and raises UserError naming ``out``."""
    out = Path(out)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.partial-", suffix=".npy", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(name, out)
    except BaseException as e:
        Path(name).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise UserError(f"{out}: cannot write the outputs ({e.strerror or e})") from None
        raise


def runs_dir() -> Path:
    """Scratch space for tool runs; a failed (or killed) run's logs stay here for the error to
    point at, for a week. Raises UserError (exit 2) when the cache cannot be written."""
    path = cache_dir("runs")
    week_ago = time.time() - 7 * 24 * 3600
    for old in path.iterdir():
        try:
            if old.stat().st_mtime < week_ago:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        except OSError:
            pass
    return path


