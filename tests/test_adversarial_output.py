"""Never lose a user's files, never a traceback (issue 16, items 1, 2, 3 and 9): the real
command line in a subprocess, real signals to real tool processes.

- item 1: an OUT holding files hetero did not write is refused (exit 2), every command with -o;
- item 2: OUT is replaced as a whole (a crash in the final move splits nothing, nothing of an
  earlier run survives) and locked against a second writer;
- item 3: SIGTERM/SIGINT/SIGKILL take the tools with hetero, leftovers go at the next run,
  a damaged cached executable is rebuilt;
- item 9: dangling symlinks, read-only places, a cache that is a file, a missing folder, a full
  disk, no C++ compiler: one line, exit 2, before the work.

A full disk is simulated with RLIMIT_FSIZE (set in the child's preexec_fn, SIGXFSZ ignored so
the write fails with EFBIG); a read-only folder is a chmod 555 folder, or /sys when the tests run
as root (root writes through file modes; sysfs refuses it)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tiny_models import tiny_mlp

REPO = Path(__file__).resolve().parents[1]


def hetero(*args, cwd=None, env=None, preexec_fn=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "hetero", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, preexec_fn=preexec_fn, timeout=timeout)


def one_line_error(r, code=2, contains=""):
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert contains in lines[0], lines[0]
    return lines[0]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def partials(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial" in p.name)


@pytest.fixture
def model(tmp_path):
    return tiny_mlp(tmp_path / "m.onnx")


@pytest.fixture
def project(tmp_path):
    """A user's project folder: the model, inputs, and folders named like hetero's."""
    p = tmp_path / "project"
    for name, text in (("hls/kernel.cpp", "// mine"), ("logs/notes.txt", "mine"),
                       ("figures/plot.svg", "<svg/>"), ("rtl/top.v", "module mine; endmodule")):
        (p / name).parent.mkdir(parents=True, exist_ok=True)
        (p / name).write_text(text)
    tiny_mlp(p / "model.onnx")
    np.save(p / "x.npy", np.zeros((2, 6), np.float32))
    return p


# --- item 1: never delete or overwrite what hetero did not write --------------------------------

@pytest.mark.parametrize("command", [
    ("synth", "-b", "pynq", "--no-synth", "-n", "2"),
    ("sim", "-n", "2"),
    ("csim", "-n", "2"),
    ("compare", "-b", "pynq", "-n", "2"),
])
def test_out_with_users_files_is_refused(project, command):
    before = tree(project)
    r = hetero(command[0], project / "model.onnx", *command[1:], "-o", project)
    one_line_error(r, 2, "hetero did not write")
    assert tree(project) == before


def test_out_empty_string_refuses_the_current_folder(project):
    before = tree(project)
    r = hetero("synth", "model.onnx", "-b", "pynq", "--no-synth", "-n", "2", "-o", "", cwd=project)
    one_line_error(r, 2, "hetero did not write")
    assert tree(project) == before


def test_file_added_to_a_previous_output_is_kept(model, tmp_path):
    out = tmp_path / "out"
    assert hetero("synth", model, "-b", "pynq", "--no-synth", "--no-compare", "-n", "2",
                  "-o", out).returncode == 0
    assert json.loads((out / ".hetero-output.json").read_text())["files"]
    (out / "my-notes.txt").write_text("mine")
    r = hetero("synth", model, "-b", "pynq", "--no-synth", "--no-compare", "-n", "2", "-o", out)
    one_line_error(r, 2, "my-notes.txt")
    assert (out / "my-notes.txt").read_text() == "mine"


def test_predict_refuses_to_overwrite_its_own_inputs(project):
    before = tree(project)
    r = hetero("predict", project / "model.onnx", "--inputs", project / "x.npy",
               "-o", project / "x.npy")
    one_line_error(r, 2, "input of this command")
    assert tree(project) == before


# --- item 2: the replacement is atomic, complete and locked -------------------------------------

def test_stale_files_of_an_earlier_run_go(model, tmp_path):
    out = tmp_path / "out"
    args = ("synth", model, "-b", "pynq", "--no-synth", "--no-compare", "-n", "2", "-o", out)
    assert hetero(*args).returncode == 0
    # an earlier run (of a model that mismatched, with the comparison on) wrote these too
    (out / "mismatches.npz").write_bytes(b"old")
    (out / "report.html").write_text("old")
    (out / "figures").mkdir()
    marker = out / ".hetero-output.json"
    listed = json.loads(marker.read_text())
    listed["files"] += ["mismatches.npz", "report.html", "figures"]
    marker.write_text(json.dumps(listed))
    r = hetero(*args)
    assert r.returncode == 0, r.stderr
    assert not (out / "mismatches.npz").exists() and not (out / "report.html").exists()
    assert not (out / "figures").exists() and (out / "report.json").is_file()
    assert partials(tmp_path) == []


CRASH_IN_MOVE = """
import os, shutil, signal, sys
from pathlib import Path
from hetero.flows.common import atomic_output

out = Path(sys.argv[1])
def crash_after(real):  # the process dies right after its first move or removal
    def move(*a, **k):
        real(*a, **k)
        os.kill(os.getpid(), signal.SIGKILL)
    return move
with atomic_output(out) as tmp:
    (tmp / "report.json").write_text("new")
    (tmp / "hls").mkdir()
    (tmp / "hls" / "top.cpp").write_text("new")
    (tmp / "rtl").mkdir()
    (tmp / "rtl" / "top.v").write_text("new")
    os.replace = crash_after(os.replace)
    os.rename = crash_after(os.rename)
    shutil.rmtree = crash_after(shutil.rmtree)
"""

FILES = ("hls/top.cpp", "rtl/top.v", "report.json")


def _state(out: Path) -> set[str]:
    return {(out / n).read_text() if (out / n).is_file() else "missing" for n in FILES}


def test_crash_during_the_final_move_splits_nothing(tmp_path):
    """SIGKILL after the first file-system move of the commit: OUT is all old or all new."""
    out = tmp_path / "out"
    for name in FILES:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("old")
    (out / ".hetero-output.json").write_text(json.dumps(
        {"tool": "hetero", "files": ["hls", "rtl", "report.json"]}))
    r = subprocess.run([sys.executable, "-c", CRASH_IN_MOVE, str(out)], capture_output=True,
                       text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert _state(out) in ({"old"}, {"new"}), _state(out)  # not a mix of two runs, nothing lost
    # the next run into OUT removes what the killed one left beside it
    r = subprocess.run([sys.executable, "-c", CRASH_IN_MOVE.split("def crash_after")[0]
                        + "with atomic_output(out) as tmp:\n    (tmp / 'report.json').write_text('3')\n",
                        str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


HOLD_OUT = """
import sys, time
from pathlib import Path
from hetero.flows.common import atomic_output

with atomic_output(Path(sys.argv[1])) as tmp:
    print("holding", flush=True)
    time.sleep(30)
"""


def test_second_writer_fails_with_one_line(model, tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_OUT, str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        r = hetero("synth", model, "-b", "pynq", "--no-synth", "--no-compare", "-n", "2",
                   "-o", out)
        one_line_error(r, 2, "another hetero run")
    finally:
        holder.kill()
        holder.wait()


# --- item 3: signals take the tools along; leftovers and damaged cache entries ------------------

def _descendants(pid: int, children_only: bool = False) -> dict[int, str]:
    """pid -> command line of every process below ``pid`` (its children only)."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_bytes()
            except OSError:
                continue
            parents.setdefault(int(stat[stat.rindex(b")") + 2:].split()[1]), []).append(int(name))
    out, todo = {}, [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            try:
                out[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                out[child] = ""
            if not children_only:
                todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return state[state.rindex(b")") + 2:state.rindex(b")") + 3] != b"Z"


TOOLS = ("verilator", "c++", "g++", "cc1plus", " ar ")


def _start_sim_until_tools_run(model, out, cache, waves=False):
    env = {**os.environ, "HETERO_CACHE_DIR": str(cache),  # fresh: Verilator really builds
           "TMPDIR": str(cache.parent)}  # a killed g++ leaves its cc*.s here, not in /tmp
    proc = subprocess.Popen([sys.executable, "-m", "hetero", "sim", str(model), "-n", "3",
                             "-o", str(out), *(["--waves"] if waves else [])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tools = {p: c for p, c in _descendants(proc.pid).items() if any(t in c for t in TOOLS)}
        if tools and partials(out.parent):  # the design's build, OUT's scratch folder made
            return proc, tools
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no tool process started")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_hetero_and_its_tools_at_once(model, tmp_path, sig):
    proc, _ = _start_sim_until_tools_run(model, tmp_path / "out", tmp_path / "cache")
    below = _descendants(proc.pid)
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    waited = time.monotonic() - t0
    time.sleep(0.3)
    assert waited < 5, f"hetero took {waited:.1f} s to stop"
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert [c for p, c in below.items() if _alive(p)] == []
    assert partials(tmp_path) == [] and not (tmp_path / "out").exists()


def test_sigkill_takes_the_tools_along_and_leftovers_go_next_run(model, tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    proc, tools = _start_sim_until_tools_run(model, out, cache)
    children = [p for p in _descendants(proc.pid, children_only=True) if p in tools]
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in children if _alive(p)] == [], "tools outlived a SIGKILLed hetero"
    assert partials(tmp_path), "expected the killed run's scratch folder"
    # no half cache entry: every build folder in the cache is complete
    for entry in (cache / "rtlsim").glob("*"):
        if entry.is_dir() and not entry.name.startswith(".") and entry.suffix != ".build":
            assert (entry / "BUILD_OK").is_file(), entry
    r = hetero("sim", model, "-n", "3", "-o", out)  # the session's cache: no rebuild to wait for
    assert r.returncode == 0, r.stderr
    assert partials(tmp_path) == []


@pytest.mark.parametrize("command, entry", [("sim", "rtlsim/*/rtlsim"),
                                            ("csim", "csim/*/hetero_csim")])
def test_damaged_cached_executable_is_rebuilt(model, command, entry):
    cache = Path(os.environ["HETERO_CACHE_DIR"])  # the session's: the build may be there
    assert hetero(command, model, "-n", "3").returncode == 0
    damaged = list(cache.glob(entry))
    assert damaged
    for exe in damaged:
        exe.write_bytes(exe.read_bytes()[:100])  # a writer killed mid-copy, a full disk
    r = hetero(command, model, "-n", "3")
    assert r.returncode == 0 and "bit-exact: yes" in r.stdout, r.stderr


# --- item 9: paths and tools --------------------------------------------------------------------

def _readonly_dir(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root writes through modes; sysfs refuses even root
        return Path("/sys")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return ro


def test_dangling_symlink_as_out(model, tmp_path):
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    r = hetero("synth", model, "-b", "pynq", "--no-synth", "-n", "2", "-o", tmp_path / "out")
    one_line_error(r, 2, "dangling")


@pytest.mark.parametrize("command", [("synth", "-b", "pynq", "--no-synth", "-n", "2"),
                                     ("sim", "-n", "2"), ("csim", "-n", "2")])
def test_read_only_out(model, tmp_path, command):
    out = _readonly_dir(tmp_path) / "hetero-out"
    t0 = time.monotonic()
    r = hetero(command[0], model, *command[1:], "-o", out)
    one_line_error(r, 2, "cannot write")
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("cache", ["read-only", "file"])
def test_unusable_cache(model, tmp_path, cache):
    path = _readonly_dir(tmp_path) / "hetero-cache" if cache == "read-only" else tmp_path / "cache"
    if cache == "file":
        path.write_text("not a folder")
    env = {**os.environ, "HETERO_CACHE_DIR": str(path)}
    for command in (("sim", "-n", "2"), ("synth", "-b", "pynq", "--no-synth", "-n", "2",
                                         "-o", tmp_path / "out")):
        r = hetero(command[0], model, *command[1:], env=env)
        one_line_error(r, 2, "cache")
    assert not (tmp_path / "out").exists()


def test_predict_into_a_missing_folder(model, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 6), np.float32))
    r = hetero("predict", model, "--inputs", tmp_path / "x.npy", "-o", tmp_path / "no" / "y.npy")
    one_line_error(r, 2, "does not exist")


def _small_files():
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead


def test_predict_on_a_full_disk_leaves_nothing(model, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((20_000, 6), np.float32))  # outputs: 480 kB
    r = hetero("predict", model, "--inputs", tmp_path / "x.npy", "-o", tmp_path / "y.npy",
               preexec_fn=_small_files)
    one_line_error(r, 2, "y.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "x.npy"]


@pytest.mark.parametrize("command", [("sim", "-n", "2"),
                                     ("synth", "-b", "pynq", "--no-synth", "-n", "2")])
def test_missing_cxx_is_found_before_the_work(model, tmp_path, command):
    env = {**os.environ, "CXX": "no-such-gxx"}
    t0 = time.monotonic()
    r = hetero(command[0], model, *command[1:], "-o", tmp_path / "out", env=env)
    one_line_error(r, 2, "C++ compiler")
    assert time.monotonic() - t0 < 4  # before the model is even compiled
    assert not (tmp_path / "out").exists()


def test_synth_on_a_full_disk_is_one_line_and_out_untouched(model, tmp_path):
    """Files capped at 64 kB (the write fails with EFBIG, as on a full disk): one line, exit 2
    or 3 (the tool that could not write), no traceback, no OUT, whichever writer hits it first."""
    r = hetero("synth", model, "-b", "pynq", "-o", tmp_path / "out", "--no-synth",
               "--no-compare", "-n", "2", preexec_fn=_small_files,
               env={**os.environ, "HETERO_CACHE_DIR": str(tmp_path / "cache")})
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.returncode in (2, 3), (r.returncode, r.stderr[-2000:])
    one_line_error(r, r.returncode)
    assert not (tmp_path / "out").exists()


def test_dump_folder_with_users_files_is_refused(model, tmp_path):
    dump = tmp_path / "notes"
    dump.mkdir()
    (dump / "mine.txt").write_text("mine")
    r = hetero("synth", model, "-b", "pynq", "-o", tmp_path / "out", "--no-synth", "--no-compare",
               "-n", "2", "--dump", dump)
    one_line_error(r, 2, "did not write")
    assert [p.name for p in dump.iterdir()] == ["mine.txt"] and not (tmp_path / "out").exists()


def test_dump_folder_of_an_earlier_dump_is_replaced(tmp_path):
    from hetero.passes.pipeline import dump_folder

    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "07-stale_pass.txt").write_text("old")
    write = dump_folder(dump)
    assert list(dump.iterdir()) == []  # the earlier dump's files go before the new one starts
    write("import", "graph")
    assert [p.name for p in dump.iterdir()] == ["00-import.txt"]


@pytest.mark.verilator
def test_waves_without_out_never_overwrite_a_users_file(model, tmp_path):
    (tmp_path / "waves.fst").write_text("my notes, not a trace")
    r = hetero("sim", model, "-n", "2", "--waves", cwd=tmp_path)
    one_line_error(r, 2, "waves.fst")
    assert (tmp_path / "waves.fst").read_text() == "my notes, not a trace"
