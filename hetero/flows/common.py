"""The end-to-end flows behind the CLI: compile a model, predict with the reference, and
``synth``: Verilog, cycle-accurate simulation against the reference, synthesis and a report."""

from __future__ import annotations

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
from hetero.cache import cache_root
from hetero.ir.config import Config
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


def load_inputs(path: str | Path) -> np.ndarray:
    """A .npy batch of inputs; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: inputs file not found")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise UserError(f"{path}: not a numpy .npy file ({str(e).splitlines()[0]})") from None


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
    """The batch to run: ``inputs`` (array or .npy file) truncated to ``n``, or ``n`` (default
    100) seeded random inputs. Raises UserError naming the file, or on an empty batch."""
    if isinstance(inputs, (str, Path)):
        x = check_inputs(graph, load_inputs(inputs), str(inputs))
    elif inputs is not None:
        x = check_inputs(graph, inputs)
    else:
        x = random_inputs(graph, n or 100, seed)
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


@contextmanager
def atomic_output(out: Path) -> Iterator[Path]:
    """A scratch folder beside ``out`` whose contents replace ``out``'s only on success;
    on failure nothing is left behind (``out`` keeps what it had)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: output path exists and is not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out}: cannot create the output folder ({e.strerror})") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
        out.mkdir(exist_ok=True)
        for item in tmp.iterdir():
            target = out / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(item, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def runs_dir() -> Path:
    """Scratch space for tool runs; a failed run's logs stay here for the error to point at."""
    path = cache_root() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


