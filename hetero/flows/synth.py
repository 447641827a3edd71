"""``synth``: the whole flow behind ``hetero synth``: compile, generate Verilog and the HLS
project, simulate bit-exact against the reference, synthesize, time, compare with CPU/GPU
baselines and write the report, all into one output folder written at once."""

from __future__ import annotations
import json
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np
from hetero import boards as boards_db
from hetero.ir.config import Config
from hetero.errors import SimulationError, UserError
from hetero.passes.folding import FoldingTarget
from hetero.dataflow import TOP_NAME, cycle_model, hardware_part
from hetero.backends.rtl.top import Top, top_verilog
from hetero.ir.graph import Graph
from hetero.frontend.onnx import import_onnx, load_model
from hetero.ops import op_of
from hetero.passes.pipeline import dump_folder, pipeline, run_pipeline
from hetero.reference import execute, predict as reference_predict
from hetero.flows.common import Progress, StageTimer, atomic_output, check_output, input_batch
from hetero.flows.common import runs_dir
from hetero.report.synth import Report, json_safe
from hetero.sim.run import Run


def layer_rows(graph: Graph) -> list[dict]:
    rows = []
    host = {n.name for n in hardware_part(graph).host}
    for n in graph.nodes:
        op = op_of(n)
        c = None if n.name in host else op.cycles(n, graph)
        rows.append({
            "runs_on": "host" if n.name in host else "fpga",
            "name": n.name, "op": n.op, "source": n.source,
            "in_type": str(graph.tensors[n.inputs[0]].dtype), "out_type": str(graph.tensors[n.outputs[0]].dtype),
            "in_shape": list(graph.tensors[n.inputs[0]].shape), "out_shape": list(graph.tensors[n.outputs[0]].shape),
            "types": {k: str(v) for k, v in n.types.items()},
            "parallelism": op.parallelism(n),
            "cycles": None if c is None else {"latency": c.latency, "interval": c.interval},
        })
    return rows

def synth(model: str | Path, board: str, out: str | Path, config: str | Path | None = None,
          inputs: str | Path | np.ndarray | None = None, n: int | None = None, seed: int = 0,
          synthesize: bool = True, backpressure: float = 0.0,
          progress: Progress | None = None, calibrate: str | Path | np.ndarray | None = None,
          target: FoldingTarget = FoldingTarget(), labels: str | Path | np.ndarray | None = None,
          compare: bool = True, clock_mhz: float | None = None,
          dump: str | Path | None = None) -> dict:
    """:func:`synth_report` (same parameters, errors and files) returning report.json's
    object (:meth:`Report.to_json`)."""
    return synth_report(model, board, out, config=config, inputs=inputs, n=n, seed=seed,
                        synthesize=synthesize, backpressure=backpressure, progress=progress,
                        calibrate=calibrate, target=target, labels=labels, compare=compare,
                        clock_mhz=clock_mhz, dump=dump).to_json()


def synth_report(model: str | Path, board: str, out: str | Path, config: str | Path | None = None,
                 inputs: str | Path | np.ndarray | None = None, n: int | None = None,
                 seed: int = 0, synthesize: bool = True, backpressure: float = 0.0,
                 progress: Progress | None = None,
                 calibrate: str | Path | np.ndarray | None = None,
                 target: FoldingTarget = FoldingTarget(),
                 labels: str | Path | np.ndarray | None = None, compare: bool = True,
                 clock_mhz: float | None = None, dump: str | Path | None = None) -> Report:
    """Generate, simulate and synthesize ``model`` for ``board``; write ``out/rtl/*.v``,
    ``out/report.json`` (and logs; ``out/mismatches.npz`` when the RTL disagrees with the
    reference, :func:`hetero.sim.run.write_mismatches`); return the report. ``compare`` adds CPU/GPU baselines,
    float-vs-fixed errors and (with ``labels``, a .npy of classes for ``inputs``) accuracy, and
    writes ``out/report.html`` and ``out/report.md`` (:mod:`hetero.report.baselines`,
    :mod:`hetero.report.html`). Raises UserError (and subclasses) on
    bad input, a failing tool or a simulation that stalls; a mismatch against the reference is
    reported (``simulation.bit_exact`` false) and raised as SimulationError after the report is
    written; so is a C simulation of the HLS project that disagrees (``csim.bit_exact`` false). ``clock_mhz``: the clock latency and throughput use (default the board's), lowered
    to the Fmax where timing (:mod:`hetero.synthesis.timing`) finds the design slower.
    ``dump``: a folder that gets the graph after every pass of the pipeline
    (:func:`hetero.passes.pipeline.dump_folder`). A design whose estimate needs more than
    :data:`hetero.synthesis.estimate.GROSS_OVER` times a resource of the board is refused
    before any hardware is generated (:func:`hetero.synthesis.estimate.refuse_grossly_over`;
    ``HETERO_ALLOW_OVERSIZED=1`` goes on)."""
    from hetero.sim.run import run, write_mismatches
    from hetero.sim.verilator import Verilator, require_cxx
    from hetero.synthesis.yosys import synthesize as run_yosys
    from hetero.synthesis.timing import PNR_TOOLS, place_and_route, require_tools, xilinx_fmax
    from hetero.backends.rtl.ports import ports as rtl_ports

    timer = StageTimer(progress)
    b = boards_db.get(board)
    if clock_mhz is not None and not clock_mhz > 0:
        raise UserError(f"--clock-mhz must be positive, got {clock_mhz:g}")
    if synthesize:
        require_tools(b)  # a board whose tools are missing fails before any work (exit 2)
    require_cxx()  # so does a missing C++ compiler (Verilator builds), a cache or an OUT
    runs_dir()  # that cannot be written, or an OUT of the user's own files (atomic_output)
    check_output(out)
    cfg = Config.load(config)
    with timer.stage("import"):
        onnx_model = load_model(model)
        float_graph = import_onnx(onnx_model)
        if calibrate is not None:  # the auto (and default) precisions from calibration data
            from hetero.passes.calibrate import calibrated_config, load_calibration, summary as calibration_summary

            x_cal = load_calibration(calibrate, float_graph)
            cfg = calibrated_config(float_graph, x_cal, cfg, b)
        graph = run_pipeline(float_graph, pipeline(cfg, b, target),
                             dump=dump_folder(dump) if dump is not None else None)
    from hetero.synthesis.estimate import refuse_grossly_over

    refuse_grossly_over(graph, b)  # a design many times the board's size stops here, in seconds
    x = input_batch(graph, inputs, n, seed)
    if labels is not None:
        if inputs is None:
            raise UserError("--labels needs --inputs (the inputs the labels belong to)")
        from hetero.report.baselines import load_labels

        if not isinstance(labels, np.ndarray):
            load_labels(labels, len(x))  # a bad file fails here, before any tool runs
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=runs_dir()))  # logs outlive a failure
    with atomic_output(Path(out)) as tmp:
        with timer.stage("verilog"):
            top = Top(graph)
            verilog = top_verilog(top)
            (tmp / "rtl").mkdir()
            (tmp / "rtl" / f"{TOP_NAME}.v").write_text(verilog)
        with timer.stage("reference"):
            values = execute(graph, x)

        def run_simulation():
            with timer.stage("simulate"):
                return run(graph, x, Verilator(backpressure=backpressure, seed=seed,
                                               work_dir=run_dir / "sim", top=top,
                                               verilog=verilog), values=values)

        def run_synthesis():
            if b.family in PNR_TOOLS:  # one Yosys run gives the counts and nextpnr's netlist
                with timer.stage("synthesize + place and route"):
                    return place_and_route(verilog, TOP_NAME, b, run_dir / "synth",
                                           ports=rtl_ports(top))
            with timer.stage("synthesize"):
                return run_yosys(verilog, TOP_NAME, b, run_dir / "synth"), xilinx_fmax(graph, b)

        def run_csim():  # the HLS C++ project (OUT/hls) and its C simulation with g++
            from hetero.flows.csim import synth_section

            with timer.stage("hls csim"):
                return synth_section(graph, b, tmp / "hls", x, values)

        # simulation, synthesis and the C simulation are independent tool runs: overlap them
        with ThreadPoolExecutor(max_workers=3) as pool:
            sim_job = pool.submit(run_simulation)
            synth_job = pool.submit(run_synthesis) if synthesize else None
            csim_job = pool.submit(run_csim)
            sim = sim_job.result()
            synth_result, timing = synth_job.result() if synth_job else (None, None)
            csim_section = csim_job.result()
        (tmp / "logs").mkdir()
        for log in (sorted(run_dir.glob("sim/*.log")) + sorted(run_dir.glob("synth/**/yosys.log"))
                    + sorted(run_dir.glob("synth/nextpnr.log"))
                    + sorted(run_dir.glob("synth/wrapper.v"))):  # the timing wrapper P&R measured
            name = "-".join(log.relative_to(run_dir).parts)  # sim-sim.log, synth-part0-yosys.log
            shutil.copy(log, tmp / "logs" / name)
        report = _report(model, graph, top, b, sim, synth_result, timer, timing=timing,
                         clock_mhz=clock_mhz)
        report.csim = csim_section
        from hetero.reference import saturation
        from hetero.report.verdict import fit_advice

        report.saturation = saturation(graph, x, values)  # per layer, what its type clipped
        report.fit_advice = fit_advice(float_graph, cfg, b, report.to_json())
        if inputs is not None:
            report.float_agreement = _float_agreement(onnx_model, graph, x)
        if calibrate is not None:
            report.calibration = calibration_summary(float_graph, graph, x_cal)
        if compare:  # CPU/GPU baselines, float vs fixed, accuracy; report.html and report.md
            from hetero.report.baselines import add_to_report
            from hetero.report.html import write_report

            add_to_report(report, onnx_model, float_graph, graph, x, values, sim.raw, b,
                          config=cfg, labels=labels, stage=timer.stage)
            with timer.stage("report"):
                write_report(report.to_json(), tmp)
        (tmp / "report.json").write_text(json.dumps(json_safe(report.to_json()), indent=2, allow_nan=False) + "\n")
        if not sim.bit_exact:
            write_mismatches(tmp, sim)
    shutil.rmtree(run_dir, ignore_errors=True)
    if not sim.bit_exact:
        raise SimulationError(f"simulation disagrees with the reference on {sim.mismatches} of "
                              f"{len(x)} inferences; see {Path(out) / 'mismatches.npz'}")
    if csim_section.get("bit_exact") is False:
        why = csim_section.get("error") or (f"disagrees with the reference on "
                                            f"{csim_section.get('mismatches')} of {len(x)} inferences")
        raise SimulationError(f"the HLS C simulation (g++) {why}; see {Path(out) / 'report.json'} "
                              "csim and OUT/hls")
    return report

def class_agreement(y_fixed: np.ndarray, y_float: np.ndarray) -> np.ndarray:
    """Per input, whether the reference's class equals the float model's: class indices (an
    argmax output) against float scores, a 0.5 threshold for a single (sigmoid) output."""
    n = len(y_float)
    y_float = y_float.reshape(n, -1)
    if y_float.shape[1] == 1:
        return (y_fixed.reshape(n) > 0.5) == (y_float[:, 0] > 0.5)
    fixed_class = y_fixed.reshape(n) if y_fixed.size == n else y_fixed.reshape(n, -1).argmax(-1)
    return fixed_class == y_float.argmax(-1)

def _float_agreement(onnx_model, graph: Graph, x: np.ndarray) -> dict:
    """How often the fixed-point reference picks the same class as onnxruntime in float, over
    every input of ``x`` whatever batch the model declares or its graph fixes
    (:func:`hetero.frontend.onnxrt.run_float` runs the batches it accepts); ``skipped`` with
    the reason (one line) where onnxruntime cannot run the model, e.g. QONNX ops."""
    from hetero.frontend.onnxrt import run_float

    try:
        y_float = run_float(onnx_model, x)
    except UserError as e:
        return {"inferences": int(len(x)), "skipped": str(e)}
    same = class_agreement(reference_predict(graph, x), y_float)
    return {"inferences": int(len(x)), "class_agreement": float(same.mean())}

def _report(model, graph: Graph, top: Top, board, sim: Run, synth_result, timer: StageTimer,
            timing=None, clock_mhz: float | None = None) -> Report:
    """The report of one synth run before its optional sections: ``sim`` the RTL
    simulation's :class:`Run`, ``synth_result`` the :class:`SynthResult` (None with
    ``--no-synth``), ``timing`` the :class:`hetero.synthesis.timing.Timing` or None."""
    from hetero.hw.cost import native_bram  # block RAM also in the family's own blocks, both sides
    from hetero.synthesis.estimate import describe_over, estimate

    clock = float(clock_mhz or board.clock_mhz)
    fmax = timing.fmax_mhz if timing is not None else None
    if fmax is not None and fmax < clock:
        clock = fmax  # latency and throughput at the clock the design reaches
    interval = sim.interval_cycles
    est = estimate(graph, board).to_json()  # the analytic model (hetero.synthesis.estimate), always
    notes = [op_of(n).hardware_note for n in graph.nodes if op_of(n).hardware_note]
    over = synth_result.over(board) if synth_result is not None else None
    if over:
        notes.append(f"does not fit {board.name}: {describe_over(over)}")
    return Report(
        model=str(model), board=board.name, part=board.part, clock_mhz=clock,
        latency_cycles=int(sim.latency_cycles), interval_cycles=interval,
        latency_us=sim.latency_cycles / clock,
        throughput_per_s=clock * 1e6 / interval if interval else None,
        cycle_model=cycle_model(graph), layers=layer_rows(graph),
        io={
            "input": {"shape": list(graph.tensors[graph.inputs[0]].shape),
                      "type": str(graph.tensors[graph.inputs[0]].dtype)},
            "output": {"shape": list(graph.tensors[graph.outputs[0]].shape),
                       "type": str(graph.tensors[graph.outputs[0]].dtype)},
            "axi_stream": "beats of lanes (hetero.hw.stream): element k of a beat at "
                          "tdata[k*W +: W]; m_axis_tlast on each inference's last beat",
            "beats": {"input": top.in_layout.beats, "output": top.out_layout.beats},
        },
        notes=notes,
        simulation={
            "simulator": sim.simulator,
            "inferences": sim.inferences,
            "bit_exact": sim.bit_exact,
            "mismatches": sim.mismatches,
            "max_latency_cycles": int(sim.max_latency_cycles),
            "total_cycles": int(sim.total_cycles),
        },
        stages_s=timer.seconds,
        fmax_mhz=fmax,
        timing=timing.as_dict() if timing is not None else None,
        clock_source=("fmax" if fmax is not None and clock == fmax
                      else "--clock-mhz" if clock_mhz else "board default"),
        resources={"synth": synth_result.to_json() if synth_result is not None else None,
                   "estimate": est["resources"]},
        utilization=({k: round(v, 2) for k, v in synth_result.utilization(board).items()}
                     if synth_result is not None else None),
        fits=bool(synth_result.fits(board)) if synth_result is not None else None,
        estimate={"model_version": est["model_version"], "utilization": est["utilization"],
                  "fits": est["fits"], "over": est["over"]},  # --no-synth: estimate only
        bram_blocks={"cell": native_bram(0, board.family)[0],
                     "estimate": native_bram(est["resources"]["bram36"], board.family)[1],
                     "synth": (native_bram(synth_result.bram36, board.family)[1]
                               if synth_result is not None else None)},
        over=over,
    )
