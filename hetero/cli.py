"""The ``hetero`` command line. Every failure the user can fix is one line on stderr,
``error: ...``, with a distinct exit code and no traceback (set HETERO_DEBUG=1 for one):

- 2: bad input (a file, a model, an option, an unknown board) or a board whose tools are not
  installed (``hetero synth`` checks them before any work: see :func:`hetero.synthesis.timing.require_tools`);
- 3: a tool failed (or, called outside that check, is missing): Verilator, Yosys, nextpnr, g++;
- 4: the simulation stalled or was not bit-exact;
- 130: interrupted.

Errors are told apart by their type (:class:`hetero.errors.UserError` and its subclasses carry
the exit code; :class:`hetero.ir.config.ConfigError` is a bad config), never by their text.
Numeric options are checked by their click type before any work: ``-n`` from 0 to
:data:`MAX_COUNT`, ``--seed`` from 0 to :data:`MAX_SEED`, ``--clock-mhz`` above 0 up to
:data:`MAX_CLOCK_MHZ`, ``--target-interval`` up to :data:`MAX_INTERVAL`, ``--backpressure`` in
[0, 1), and no float option takes NaN or an infinity.

Start-up stays cheap (``hetero --help`` and ``--version`` load click and :mod:`hetero.errors`
only): every command imports what it runs inside its own function."""

from __future__ import annotations

import json
import math
import errno
import os
import sys
from pathlib import Path

import click

from hetero.errors import UserError


MAX_COUNT = 1_000_000  # -n: inferences in one run
MAX_SEED = 2**32 - 1  # --seed
MAX_CLOCK_MHZ = 10_000.0  # --clock-mhz
MAX_INTERVAL = 2**31 - 1  # --target-interval (cycles)


class _FiniteFloat(click.ParamType):
    """A float option that is a finite number within ``[lo, hi]`` (an end left out: unbounded;
    ``lo_open`` / ``hi_open``: that end excluded). NaN and infinities are refused."""

    name = "float"

    def __init__(self, lo: float | None = None, hi: float | None = None, *,
                 lo_open: bool = False, hi_open: bool = False):
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open

    def convert(self, value, param, ctx):
        x = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(x):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        low = self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo)
        high = self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi)
        if low or high:
            self.fail(f"{x:g} is not in the range {self._describe()}", param, ctx)
        return x

    def _describe(self) -> str:
        parts = []
        if self.lo is not None:
            parts.append(f"{self.lo:g}{'<' if self.lo_open else '<='}")
        parts.append("x")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='}{self.hi:g}")
        return "".join(parts)


COUNT = click.IntRange(0, MAX_COUNT)
SEED = click.IntRange(0, MAX_SEED)


def _fail(message: str, code: int) -> None:
    from hetero.ir.text import printable  # pure Python, cheap

    click.echo(f"error: {printable(message)}", err=True)
    sys.exit(code)


#: errno values of a full disk or quota
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class _Group(click.Group):
    def main(self, *args, **kwargs):
        """Click's usage errors, too, as one line (``error: ...``) with exit code 2."""
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            _fail("interrupted", 130)
        except click.ClickException as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # bare `hetero`: show the help
                click.echo(e.format_message(), err=True)
                sys.exit(e.exit_code)
            _fail(e.format_message().replace("\n", " "), e.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            if os.environ.get("HETERO_DEBUG"):
                raise
            _fail(str(e).splitlines()[0] if str(e) else type(e).__name__, e.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except EOFError as e:  # a file that ends early (click would report it as an interrupt)
            if os.environ.get("HETERO_DEBUG"):
                raise
            _fail(f"unexpected end of a file ({str(e).splitlines()[0] if str(e) else 'EOFError'})", 2)
        except OSError as e:  # the machine, not the program: a full disk or quota
            if os.environ.get("HETERO_DEBUG") or e.errno not in _DISK_FULL:
                raise
            _fail(f"{e.filename or 'writing a file'}: {os.strerror(e.errno)}; free some space "
                  "(the cache: $HETERO_CACHE_DIR or ~/.cache/hetero) and run again", 2)
        except Exception as e:  # Amaranth's built-in Yosys failing (e.g. on a full disk)
            if os.environ.get("HETERO_DEBUG") or type(e).__name__ != "YosysError" \
                    or not type(e).__module__.startswith("amaranth"):
                raise
            _fail(f"Amaranth's Yosys failed while generating Verilog "
                  f"({str(e).strip().splitlines()[-1] if str(e).strip() else 'no message'})", 3)


def _compare_options(command):
    """``--labels`` / ``--no-compare``, for the commands that write report.html."""
    command = click.option("--no-compare", is_flag=True,
                           help="Skip the CPU/GPU baselines and report.html / report.md.")(command)
    return click.option("--labels", type=click.Path(path_type=Path), metavar="y.npy",
                        help="Class labels of --inputs (.npy): accuracy of float, fixed point and "
                             "the simulated hardware in the report.")(command)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hetero")
def main() -> None:
    """From ONNX to FPGA hardware with open tools: does it fit, how fast is it, is it exact."""
    _stop_tools_on_signals()


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (Linux /proc; elsewhere none), children first."""
    parents: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        parents.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _stop_tools_on_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP stop hetero at once: every tool process it started (Verilator,
    make, g++, Yosys, nextpnr, and theirs) is killed, then the command unwinds as interrupted
    (exit 130), so unfinished output folders and scratch files are removed on the way out.
    (A SIGKILLed hetero takes its tools with it too: :func:`hetero.cache.die_with_parent`.)"""
    import signal
    import threading
    import time

    if threading.current_thread() is not threading.main_thread():
        return

    def kill_tools() -> None:
        for pid in _descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def keep_killing() -> None:  # threads still winding down may start another tool
        while True:
            time.sleep(0.05)
            kill_tools()

    def stop(signum, frame):
        signal.signal(signum, signal.SIG_IGN)  # one stop is enough
        kill_tools()
        threading.Thread(target=keep_killing, daemon=True).start()
        raise KeyboardInterrupt

    before = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.default_int_handler, signal.SIG_DFL):
            before[sig] = signal.signal(sig, stop)

    def restore():  # hetero called in-process (click's test runner): leave the host as it was
        for sig, handler in before.items():
            signal.signal(sig, handler)

    click.get_current_context().call_on_close(restore)


def _stderr_progress(quiet: bool):
    if quiet:
        return None
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:  # logs and pipes get the summary and errors only
        return None
    return lambda stage: console.print(f"[bold cyan]>[/] {stage}", highlight=False)


def _calibrate_option(command):
    """``--calibrate X.npy``, for every command that compiles a model."""
    return click.option("--calibrate", type=click.Path(path_type=Path), metavar="X.npy",
                        help="Calibration inputs (.npy): pick per-layer fixed-point types from the "
                             "ranges they reach in float (config precision 'auto'; types the "
                             "config names win).")(command)


def _run_options(command):
    """``--inputs``, ``-n``, ``--config``, ``--board``: the batch and the design of every
    command that runs a model's hardware (sim, csim)."""
    options = [
        click.option("--inputs", type=click.Path(path_type=Path), metavar="X.npy",
                     help="Batch of inputs (.npy, first axis = batch); default: random inputs."),
        click.option("-n", "count", type=COUNT,
                     help=f"Number of inferences (default 100, or all of --inputs; at most {MAX_COUNT:,})."),
        click.option("--config", "-c", type=click.Path(path_type=Path),
                     help="hls4ml-style precision/parallelism config (YAML or JSON)."),
        click.option("--board", "-b", help="Fold the design for this board, as `hetero synth` would."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _folding_options(command):
    """``--target-interval`` / ``--target-fps``, for every command that folds a design."""
    command = click.option("--target-fps", type=_FiniteFloat(), metavar="FPS",
                           help="Fold every layer to the least hardware that still gives FPS "
                                "inferences/s at the board's clock.")(command)
    return click.option("--target-interval", type=click.IntRange(max=MAX_INTERVAL), metavar="CYCLES",
                        help="Fold every layer to the least hardware whose interval is at most "
                             "CYCLES (default: the fastest design that fits the board).")(command)


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--board", "-b", required=True, help="Target board (see `hetero boards`).")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Output folder: rtl/*.v, report.json, logs.")
@click.option("--config", "-c", type=click.Path(path_type=Path),
              help="hls4ml-style precision/parallelism config (YAML or JSON).")
@click.option("--inputs", type=click.Path(path_type=Path),
              help="Batch of inputs (.npy, first axis = batch); default: random inputs.")
@click.option("-n", "count", type=COUNT,
              help=f"Number of inferences to simulate (default 100; at most {MAX_COUNT:,}).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for random inputs.")
@click.option("--no-synth", is_flag=True, help="Skip Yosys synthesis.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@click.option("--clock-mhz", type=_FiniteFloat(0.0, MAX_CLOCK_MHZ, lo_open=True), metavar="MHZ",
              help="Clock for latency and throughput (default: the board's; lowered to the Fmax "
                   "when timing finds the design slower).")
@click.option("--dump", type=click.Path(path_type=Path), metavar="DIR",
              help="Write the graph after every pass to DIR (00-import.txt, 01-<pass>.txt, ...).")
@_calibrate_option
@_folding_options
@_compare_options
def synth(model, board, out, config, inputs, count, seed, no_synth, quiet, clock_mhz, dump,
          calibrate, target_interval, target_fps, labels, no_compare) -> None:
    """Generate, simulate (bit-exact check) and synthesize MODEL for a board."""
    from hetero.boards import get as get_board
    from hetero.flows.synth import synth as run_synth
    from hetero.passes.folding import FoldingTarget

    target = FoldingTarget.from_options(target_interval, target_fps, get_board(board))
    report = run_synth(model, board, out, config=config, inputs=inputs, n=count, seed=seed,
                       synthesize=not no_synth, progress=_stderr_progress(quiet), calibrate=calibrate,
                       target=target, labels=labels, compare=not no_compare, clock_mhz=clock_mhz,
                       dump=dump)
    _print_summary(report, out)
    _warn_report(report)
    if report.get("baselines"):
        click.echo(f"  compare   {out / 'report.html'}")


def _warn_saturation(rows) -> None:
    """One ``warning:`` line on stderr per layer whose type saturated on the data."""
    from hetero.reference import saturation_warnings

    for line in saturation_warnings(rows or []):
        click.echo(line, err=True)


def _warn_report(report: dict) -> None:
    """The warnings of a synth/compare report on stderr: saturation, a design that does not fit."""
    from hetero.ir.text import printable

    _warn_saturation(report.get("saturation"))
    advice = (report.get("fit_advice") or {}).get("advice")
    if advice:
        click.echo(f"warning: the design {printable(advice)}", err=True)


def _print_summary(report: dict, out: Path) -> None:
    sim = report["simulation"]
    lines = [
        f"{report['model']} on {report['board']} ({report['part']}) at {report['clock_mhz']} MHz",
        f"  latency   {report['latency_cycles']} cycles = {report['latency_us']:.3f} us",
        f"  interval  {report['interval_cycles']:g} cycles = {report['throughput_per_s']:,.0f} inferences/s",
        f"  simulation {sim['inferences']} inferences, bit-exact: {sim['bit_exact']} ({sim['simulator']})",
    ]
    if report["resources"]["synth"]:
        r, u = report["resources"]["synth"], report["utilization"]
        lines.append(f"  resources LUT {r['lut']} ({u['lut']:.1f} %), FF {r['ff']} ({u['ff']:.1f} %), "
                     f"DSP {r['dsp']} ({u['dsp']:.1f} %), BRAM36 {r['bram36']:g} ({u['bram36']:.1f} %)"
                     f" -> {'fits' if report['fits'] else 'DOES NOT FIT'}")
    if report.get("timing"):
        t = report["timing"]
        fmax = f"{t['fmax_mhz']:g} MHz" if t["fmax_mhz"] else f"unknown ({t['note']})"
        lines.append(f"  timing    Fmax {fmax} by {t['tool']} ({t['method'].split(':')[0]})")
    lines.append(f"  report    {out / 'report.json'}")
    click.echo("\n".join(lines))


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--board", "-b", required=True, help="Target board (see `hetero boards`).")
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Also write the full report there (report.html, report.md, report.json, rtl).")
@click.option("--config", "-c", type=click.Path(path_type=Path),
              help="hls4ml-style precision/parallelism config (YAML or JSON).")
@click.option("--inputs", type=click.Path(path_type=Path), metavar="X.npy",
              help="Batch of inputs (.npy, first axis = batch); default: random inputs.")
@click.option("-n", "count", type=COUNT,
              help=f"Number of inferences to simulate (default 100; at most {MAX_COUNT:,}).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for random inputs.")
@click.option("--synth", "run_synth", is_flag=True,
              help="Synthesize with Yosys too (resource counts for the FPGA power model).")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@_calibrate_option
@_folding_options
@click.option("--labels", type=click.Path(path_type=Path), metavar="y.npy",
              help="Class labels of --inputs (.npy): accuracy of float, fixed point and hardware.")
def compare(model, board, out, config, inputs, count, seed, run_synth, quiet, calibrate,
            target_interval, target_fps, labels) -> None:
    """MODEL on the FPGA (simulated cycles at the board's clock), the CPU and the GPU
    (onnxruntime, measured): latency, throughput and energy per inference side by side."""
    import tempfile

    from hetero.boards import get as get_board
    from hetero.report.baselines import print_comparison
    from hetero.flows.synth import synth as run_flow
    from hetero.passes.folding import FoldingTarget

    target = FoldingTarget.from_options(target_interval, target_fps, get_board(board))
    with tempfile.TemporaryDirectory(prefix="hetero-compare-") as scratch:
        report = run_flow(model, board, out if out is not None else Path(scratch) / "out",
                          config=config, inputs=inputs, n=count, seed=seed, synthesize=run_synth,
                          progress=_stderr_progress(quiet), calibrate=calibrate, target=target,
                          labels=labels)
    print_comparison(report)
    _warn_report(report)
    if out is not None:
        click.echo(f"report: {out / 'report.html'}")


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--inputs", required=True, type=click.Path(path_type=Path),
              help="Batch of inputs (.npy, first axis = batch).")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
              help="Where to write the outputs (.npy).")
@click.option("--config", "-c", type=click.Path(path_type=Path))
@click.option("--float", "as_float", is_flag=True, help="Run the float graph instead of fixed point.")
@_calibrate_option
def predict(model, inputs, out, config, as_float, calibrate) -> None:
    """Run the bit-accurate fixed-point reference on a batch of inputs."""

    from hetero.ir.config import Config
    from hetero.flows.common import check_output_file, compile_model, load_inputs, write_npy
    from hetero.frontend.onnx import import_onnx
    from hetero.passes.pipeline import simplify
    from hetero.reference import check_inputs, predict as ref_predict

    if as_float and calibrate is not None:
        raise UserError("--calibrate chooses fixed-point types; it does nothing with --float")
    check_output_file(out, model, inputs, config, calibrate)  # before any work
    x = load_inputs(inputs)
    graph = (simplify(import_onnx(model)) if as_float
             else compile_model(model, Config.load(config), calibrate=calibrate))
    x = check_inputs(graph, x, str(inputs))  # an error names the file
    y = ref_predict(graph, x)
    write_npy(out, y)  # all at once; a failed write leaves nothing behind
    if not as_float:
        from hetero.reference import saturation

        _warn_saturation(saturation(graph, x))
    if calibrate is not None:
        from hetero.passes.calibrate import model_summary, print_report

        print_report(model_summary(model, graph, calibrate))
    click.echo(f"wrote {out}: {list(y.shape)} {y.dtype}", err=True)


@main.command(name="import")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--config", "-c", type=click.Path(path_type=Path))
@click.option("--board", "-b", help="Choose parallelism for this board.")
@click.option("--dump", is_flag=True, help="Print the graph after every pass.")
@click.option("--graph", "show_graph", is_flag=True, help="Print the lowered graph too.")
@click.option("--json", "as_json", is_flag=True, help="Print the layer table as JSON.")
@_calibrate_option
def import_(model, config, board, dump, show_graph, as_json, calibrate) -> None:
    """Lower MODEL and list its layers: shapes, types, MACs, parameters, hardware support.

    Exits 0 whenever the model imports; layers without hardware yet say why. A bad config
    (:class:`~hetero.ir.config.ConfigError`), board or calibration file exits 2."""
    from dataclasses import asdict

    from hetero.boards import get as get_board
    from hetero.flows.common import compile_model
    from hetero.frontend.onnx import import_onnx
    from hetero.ir.config import Config, ConfigError
    from hetero.passes.calibrate import load_calibration
    from hetero.passes.pipeline import simplify
    from hetero.report.layers import summarize, totals
    from hetero.ir.text import printable, rich_markup as esc  # model text printed literally

    def show(name, graph):
        click.echo(f"--- after {name} ---\n{printable(graph, keep_newlines=True)}")

    cfg = Config.load(config)  # the user's files and options: errors exit 2, before typing
    b = get_board(board) if board is not None else None
    float_graph = import_onnx(model)
    x_cal = load_calibration(calibrate, float_graph) if calibrate is not None else None
    graph = simplify(float_graph)  # the table's graph if typing fails
    typing_error = None
    try:
        graph = compile_model(model, cfg, b, dump=show if dump else None, calibrate=x_cal)
    except ConfigError:
        raise
    except UserError as e:
        if e.exit_code != 2:
            raise
        typing_error = str(e)
    rows = summarize(graph, check_hardware=typing_error is None)
    total = totals(rows)
    if as_json:
        click.echo(json.dumps({"model": str(model), "layers": [asdict(r) for r in rows], "totals": total,
                               "typed": typing_error is None, "typing_error": typing_error}, indent=1))
        return
    if show_graph and not dump:
        click.echo(printable(graph, keep_newlines=True))
    from rich.console import Console
    from rich.table import Table

    table = Table(title=esc(model), title_justify="left")
    for col, just in (("layer", "left"), ("op", "left"), ("output", "right"), ("type", "left"),
                      ("MACs", "right"), ("params", "right"), ("parallel", "left"), ("hardware", "left")):
        table.add_column(col, justify=just, overflow="fold")
    for r in rows:
        table.add_row(esc(r.name), esc(r.op), "x".join(map(str, r.out_shape)), esc(r.out_type), f"{r.macs:,}",
                      f"{r.params:,}", esc(r.parallelism), esc(r.hardware))
    table.add_row("total", f"{total['layers']} layers", "", "", f"{total['macs']:,}", f"{total['params']:,}", "",
                  f"{total['without_hardware']} without hardware" if total["without_hardware"] else "all")
    Console(width=200).print(table)
    if typing_error:
        click.echo(f"note: not typed yet: {printable(typing_error)}")

@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def boards(as_json) -> None:
    """List the boards hetero knows."""
    from dataclasses import asdict

    from hetero.boards import all_boards

    rows = all_boards()
    if as_json:
        click.echo(json.dumps([asdict(b) for b in rows], indent=2))
        return
    for b in rows:
        click.echo(f"{b.name:<16} {b.part:<24} {b.family:<6} LUT {b.lut:>9,} FF {b.ff:>9,} "
                   f"DSP {b.dsp:>6,} BRAM36 {b.bram36:>7g} URAM {b.uram:>5,} {b.clock_mhz:>5g} MHz")


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--board", "-b", required=True, help="Target board (see `hetero boards`).")
@click.option("--config", "-c", type=click.Path(path_type=Path),
              help="hls4ml-style precision/parallelism config (YAML or JSON).")
@click.option("--json", "as_json", is_flag=True,
              help="Print {resources {lut, ff, dsp, bram36}, latency_cycles, interval_cycles, layers[]}.")
@_folding_options
def estimate(model, board, config, as_json, target_interval, target_fps) -> None:
    """Estimate MODEL's resources and cycles on a board in milliseconds: the analytic per-op
    models (no HDL elaboration, no synthesis), per layer and in total, and whether it fits."""
    from hetero.boards import get as get_board
    from hetero.synthesis.estimate import describe_over, estimate as run_estimate
    from hetero.ir.text import rich_markup as esc  # model text printed literally
    from hetero.flows.common import compile_model
    from hetero.passes.folding import FoldingTarget

    b = get_board(board)
    target = FoldingTarget.from_options(target_interval, target_fps, b)
    est = run_estimate(compile_model(model, config, b, target=target), b).as_dict()
    if as_json:
        click.echo(json.dumps({"model": str(model), **est}, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{esc(model)} on {b.name} ({b.part}), model {est['model_version']}",
                  title_justify="left")
    from hetero.hw.cost import NATIVE_BRAM, native_bram  # block RAM in the family's own blocks

    def blocks(bram36: float) -> str:
        return f"{native_bram(bram36, b.family)[1]:g}"

    for col in ("layer", "op", "LUT", "FF", "DSP", NATIVE_BRAM[b.family][0], "latency", "interval"):
        table.add_column(col, justify="left" if col in ("layer", "op") else "right", overflow="fold")
    for r in est["layers"]:
        c = r.get("cycles") or {}
        table.add_row(esc(r["name"]), esc(r["op"]), f"{r['lut']:,}", f"{r['ff']:,}", str(r["dsp"]), blocks(r["bram36"]),
                      str(c.get("latency", "")), str(c.get("interval", "")))
    t, u = est["resources"], est["utilization"]
    table.add_row("total", "", f"{t['lut']:,} ({u['lut']:.1f} %)", f"{t['ff']:,} ({u['ff']:.1f} %)",
                  f"{t['dsp']} ({u['dsp']:.1f} %)", f"{blocks(t['bram36'])} ({u['bram36']:.1f} %)",
                  str(est["latency_cycles"]), str(est["interval_cycles"]))
    Console(width=160).print(table)
    click.echo(f"latency {est['latency_us']:.3f} us, {est['throughput_per_s']:,.0f} inferences/s at "
               f"{est['clock_mhz']:g} MHz; "
               + ("fits" if est["fits"] else f"DOES NOT FIT: {describe_over(est['over'])}"))


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@_run_options
@click.option("--backpressure", type=_FiniteFloat(0.0, 1.0, hi_open=True), default=0.0,
              show_default=True, metavar="P",
              help="Probability that the output is not ready in a cycle.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seed for random inputs and backpressure.")
@click.option("--waves", is_flag=True, help="Write an FST trace (OUT/waves.fst, or ./waves.fst).")
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Folder for mismatches.npz (written only when outputs differ) and waves.")
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
@_folding_options
def sim(model, inputs, count, config, board, backpressure, seed, waves, out, quiet,
        target_interval, target_fps) -> None:
    """Simulate MODEL's RTL (native Verilator harness) and check it bit-exact against the
    reference. Exits 0 only when every output matches, 4 when any differs or the design stalls."""
    from hetero.boards import get as get_board
    from hetero.passes.folding import FoldingTarget
    from hetero.flows.sim import MismatchError, simulate_model

    # unknown board or contradictory targets: fail before any work
    target = FoldingTarget.from_options(target_interval, target_fps,
                                        get_board(board) if board is not None else None)
    wave_file = ((out if out is not None else Path(".")) / "waves.fst") if waves else None
    if wave_file is not None and out is None and (wave_file.exists() or wave_file.is_symlink()):
        if wave_file.is_symlink() or not wave_file.is_file() or wave_file.read_bytes()[:1] != b"\0":
            raise UserError(f"{wave_file}: exists and is not an FST trace; --waves without -o "
                            "writes ./waves.fst: move that file or give -o OUT")
    try:
        report = simulate_model(model, inputs=inputs, n=count, config=config, board=board,
                                backpressure=backpressure, seed=seed, waves=wave_file, out=out,
                                progress=_stderr_progress(quiet), target=target)
    except MismatchError as e:
        click.echo(e.report.summary())
        raise
    click.echo(report.summary())


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@_run_options
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for random inputs.")
@click.option("--out", "-o", type=click.Path(path_type=Path),
              help="Folder for the HLS project (OUT/hls) and mismatches.npz (only when outputs differ).")
def csim(model, inputs, count, config, board, seed, out) -> None:
    """Build MODEL's HLS C++ project with g++ and run it (C simulation); exits 0 only when every
    output equals the reference bit for bit, 4 when any differs, 2 when g++ is missing."""
    from hetero.flows.csim import CsimMismatch, csim_model

    try:
        r = csim_model(model, inputs=inputs, n=count, config=config, board=board, seed=seed, out=out)
    except CsimMismatch as e:
        click.echo(_csim_summary(model, e.result))
        raise
    click.echo(_csim_summary(model, r))


def _csim_summary(model, r) -> str:
    build = "cached" if r.build_cached else f"{r.build_seconds:.1f} s"
    return (f"{model}\n  inferences {len(r.expected)}, bit-exact: {'yes' if r.bit_exact else 'NO'} "
            f"({r.mismatches} mismatching)\n  compiler   {r.compiler}\n"
            f"  build {build}, run {r.run_seconds:.3f} s")
