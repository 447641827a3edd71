"""report.html / report.md: self-contained, escaped, complete without a GPU; a real `hetero synth`
with --inputs/--labels writes them, and headless Chromium renders the page without errors."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import model_path

from hetero.report import html as report_html

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


def _report() -> dict:
    """A report.json as synth writes it (figures made up, structure real), with a hostile layer
    name and sections other parts of hetero add (timing, csim)."""
    return {
        "model": "models/<b>net</b>.onnx", "board": "pynq-z2", "part": "xc7z020clg400-1",
        "clock_mhz": 100, "latency_cycles": 12, "interval_cycles": 2, "latency_us": 0.12,
        "throughput_per_s": 5e7,
        "layers": [{"runs_on": "fpga", "name": "<script>alert(1)</script>", "op": "Dense",
                    "in_type": "fixed<16,6>", "out_type": "fixed<16,6>", "parallelism": {"pe": 2},
                    "cycles": {"latency": 4, "interval": 2}},
                   {"runs_on": "fpga", "name": "relu", "op": "Relu", "in_type": "fixed<16,6>",
                    "out_type": "ufixed<16,6>", "parallelism": None, "cycles": {"latency": 1, "interval": 1}}],
        "simulation": {"simulator": "verilator", "inferences": 10, "bit_exact": True, "mismatches": 0},
        "resources": {"synth": {"tool": "yosys", "lut": 1000, "ff": 500, "dsp": 4, "bram36": 0.5}},
        "utilization": {"lut": 1.9, "ff": 0.5, "dsp": 1.8, "bram36": 0.4}, "fits": True,
        "timing": {"fmax_mhz": 143.2, "source": "estimate"},
        "csim": {"bit_exact": True, "compiler": "g++ 12"},
        "baselines": {
            "graph_timed": "the model as given",
            "cpu": {"device": "Test CPU", "measured": True, "batch1_latency_us": 8.0,
                    "best_throughput_per_s": 4e6, "best_batch": 512,
                    "throughput": [{"batch": 1, "per_s": 1.25e5}, {"batch": 512, "per_s": 4e6}],
                    "energy": {"batch1_uj": 30.0, "throughput_uj": 1.1, "measured": False,
                               "method": "estimated: TDP"}},
            "gpu": None, "gpu_note": "no GPU: onnxruntime on this machine has no CUDAExecutionProvider",
            "fpga": {"device": "pynq-z2", "measured": False, "batch1_latency_us": 0.12,
                     "best_throughput_per_s": 5e7, "best_batch": None, "source": "simulation",
                     "energy": {"power_w": 3.6, "batch1_uj": 0.43, "throughput_uj": 0.07,
                                "measured": False, "method": "estimated: power model"}},
        },
        "fixed_point_error": {"samples": 10, "layers": [
            {"layer": "relu", "op": "Relu", "type": "ufixed<16,6>", "lsb": 2 ** -10, "max_abs_error": 0.001,
             "rms_error": 0.0004, "snr_db": 60.0,
             "hist": {"edges": list(np.linspace(-0.001, 0.001, 6)), "counts": [1, 3, 8, 3, 1]}}]},
        "accuracy": {"samples": 10, "labels": "y.npy", "float": 0.9, "fixed_reference": 0.9, "hardware": 0.9},
        "published": [{"label": "FINN on Pynq-Z2", "batch1_latency_us": 17.5, "best_throughput_per_s": 57268,
                       "energy": {"throughput_uj": 30.7, "measured": True, "method": "harness"},
                       "accuracy": 0.825, "conditions": "board, driver overhead included", "source": "MLPerf"}],
        "stages_s": {"import": 0.1},
    }


def _images(page: str) -> list[str]:
    return re.findall(r'<img[^>]*\bsrc="([^"]*)"', page)


def _assert_self_contained(page: str) -> None:
    assert "<script" not in page.lower().replace("&lt;script", "")
    for attr in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert attr.startswith("data:image/png;base64,"), attr
    from PIL import Image

    for src in _images(page):
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        img.verify()
        assert img.format == "PNG"


def test_html_is_self_contained_escaped_and_complete_without_gpu():
    page = report_html.render_html(_report())
    _assert_self_contained(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<b>net</b>" not in page
    assert "no CUDAExecutionProvider" in page  # the GPU's absence is said, not hidden
    assert len(_images(page)) >= 5  # comparison, throughput, utilization, cycles, errors
    for section in ("fmax_mhz", "143.2", "csim", "g++ 12"):  # other report sections, generically
        assert section in page
    assert "estimated" in page and "simulated hardware" in page  # energy tags, accuracy table
    assert "FINN on Pynq-Z2" in page and "driver overhead" in page  # published, with conditions


def test_markdown_and_figures_written(tmp_path):
    written = report_html.write_report(_report(), tmp_path)
    assert (tmp_path / "report.html") in written and (tmp_path / "report.md") in written
    md = (tmp_path / "report.md").read_text()
    assert "| FPGA: pynq-z2 (simulated)" in md and "no CUDAExecutionProvider" in md
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", md):
        assert (tmp_path / link).is_file()


def test_published_figures_found_by_model_hash():
    rows = report_html.published_for(model_path("finn_kws_mlp_w3a3_mlperftiny_v0.7.qonnx.onnx"), "pynq-z2")
    assert rows and rows[0]["batch1_latency_us"] == 17.5 and rows[0]["energy"]["throughput_uj"] == 30.7
    assert report_html.published_for(model_path("two_layer"), "pynq-z2") == []


# -- a real run, rendered by Chromium -------------------------------------------------------------

@pytest.fixture(scope="module")
def synth_out(tmp_path_factory):
    from hetero.flows.synth import synth
    from hetero.frontend.onnx import import_onnx
    from hetero.passes.pipeline import simplify
    from hetero.reference import predict

    path = model_path("two_layer")
    out = tmp_path_factory.mktemp("synth") / "out"
    g = simplify(import_onnx(path))
    x = np.random.default_rng(3).standard_normal((40,) + g.tensors[g.inputs[0]].shape)
    labels = (predict(g, x).reshape(len(x)) > 0.5).astype(np.int64)
    labels[:4] = 1 - labels[:4]  # four wrong labels: float is 90 % right
    xs, ys = out.parent / "x.npy", out.parent / "y.npy"
    np.save(xs, x)
    np.save(ys, labels)
    report = synth(path, "pynq-z2", out, inputs=xs, labels=ys, synthesize=False)
    return out, report


@pytest.mark.verilator
def test_synth_writes_baselines_accuracy_and_report(synth_out):
    out, report = synth_out
    on_disk = json.loads((out / "report.json").read_text())
    b = on_disk["baselines"]
    assert set(b["cpu"]) >= {"device", "batch1_latency_us", "best_throughput_per_s", "best_batch"}
    assert b["gpu"] is None or b["gpu"]["device"]
    assert b["fpga"]["batch1_latency_us"] == pytest.approx(report["latency_us"])
    acc = on_disk["accuracy"]
    assert acc["float"] == pytest.approx(0.9) and acc["samples"] == 40
    assert acc["hardware"] == acc["fixed_reference"]  # bit-exact hardware, same classes
    page = (out / "report.html").read_text()
    _assert_self_contained(page)
    assert (out / "report.md").is_file()


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("chromium not installed (.ci/run installs it: apt-get install -y chromium)")
    return exe


@pytest.mark.verilator
@pytest.mark.browser
def test_report_renders_in_headless_chromium(synth_out, tmp_path):
    out, _ = synth_out
    exe = _chromium()
    url = (out / "report.html").resolve().as_uri()
    shot = tmp_path / "report.png"
    base = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    env = {**os.environ, "HOME": str(tmp_path)}
    run = subprocess.run(base + ["--window-size=1280,2000", f"--screenshot={shot}", url],
                         capture_output=True, text=True, timeout=120, env=env)
    assert shot.is_file(), run.stderr[-2000:]
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=120, env=env)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for log in (run.stderr, dom.stderr):  # page errors: scripts, resources that did not load
        bad = [line for line in log.splitlines() if "CONSOLE" in line or "net::ERR" in line
               or "Failed to load resource" in line]
        assert not bad, bad
    assert 'id="comparison"' in dom.stdout and 'id="fpga"' in dom.stdout
    assert len(_images(dom.stdout)) == len(_images((out / "report.html").read_text())) >= 4
    from PIL import Image

    img = Image.open(shot)
    assert img.size == (1280, 2000)
    colors = img.convert("RGB").resize((64, 100)).getcolors(64 * 100)
    assert colors is None or len(colors) > 20  # a drawn page, not a blank or error screen
