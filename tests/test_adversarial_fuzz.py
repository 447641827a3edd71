"""Fuzzing of the importer and the compile pipeline (issue 16): seeded mutants of two small
models (tests/tiny_models.py's MLP and a small convolution network), byte flips of the file and
field edits of the parsed model (attribute values and types, dims, weights with NaN/Inf/1e38,
op types, wiring), each either compile or fail with hetero's own error (a UserError: one
``error:`` line, exit 2 at the CLI); any other exception, or a mutant that runs past its time
bound, fails the test with the seeds that reproduce it. Fixed seeds: the same mutants on every
run."""

from __future__ import annotations

import random
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from tiny_models import tiny_mlp

from hetero.errors import UserError

MUTANTS_PER_MODEL = 500
SECONDS_PER_MUTANT = 10  # a hang, not a slow machine: a mutant normally takes milliseconds
INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF)


def small_conv(path: Path) -> Path:
    """Conv 1 -> 2 channels 3x3 on 6x6, Relu, MaxPool 2, Flatten, Gemm 8 -> 3 (seeded weights)."""
    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, s).astype(np.float32), name)
             for name, s in (("Wc", (2, 1, 3, 3)), ("bc", (2,)), ("Wf", (8, 3)), ("bf", (3,)))]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "Wc", "bc"], ["c"], name="conv", kernel_shape=[3, 3]),
         helper.make_node("Relu", ["c"], ["r"], name="relu"),
         helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
         helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
         helper.make_node("Gemm", ["f", "Wf", "bf"], ["y"], name="fc")],
        "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def mutate(data: bytes, seed: int) -> bytes:
    """1 to 8 byte changes (a flipped bit, a random byte or a boundary value) at seeded places."""
    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 4, 8))):
        k = rng.randrange(len(out))
        how = rng.randrange(3)
        out[k] = (out[k] ^ (1 << rng.randrange(8)) if how == 0 else rng.randrange(256) if how == 1
                  else rng.choice(INTERESTING))
    return bytes(out)


class Hang(BaseException):
    """A mutant ran past :data:`SECONDS_PER_MUTANT` (BaseException: no ``except Exception``
    in hetero swallows it)."""


@contextmanager
def time_bound(seconds: float):
    def expire(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_mutant(path: Path) -> str:
    """'compiled' or 'refused' (a UserError); anything else raises."""
    from hetero.flows.common import compile_model
    from hetero.report.layers import summarize

    try:
        graph = compile_model(path, None, "pynq-z2")
        summarize(graph)  # what `hetero import` prints
    except UserError as e:
        assert str(e) and "\x1b" not in str(e) and "\n" not in str(e)
        return "refused"
    return "compiled"


INTS = (0, 1, -1, 2, 3, 7, 255, 2**31 - 1, -2**31, 2**40)
FLOATS = (0.0, -0.0, 1e38, -1e38, float("nan"), float("inf"), 1e-45, 3.0, -1.0)
OPS = ("Relu", "Gemm", "Conv", "MaxPool", "Add", "Concat", "Reshape", "Transpose", "Flatten", "Softmax",
       "Sigmoid", "Clip", "BatchNormalization", "Mul", "Pad", "Resize", "GlobalAveragePool", "Identity",
       "Squeeze", "Unsqueeze", "LeakyRelu", "PRelu", "MatMul", "Div", "Sub", "Slice", "Tile", "Expand")
ATTRS = ("axis", "perm", "kernel_shape", "strides", "pads", "alpha", "beta", "transB", "group",
         "dilations", "epsilon", "min", "max", "auto_pad", "ceil_mode", "keepdims")


def edit(model: onnx.ModelProto, seed: int) -> bytes:
    """1 to 3 seeded field edits of a copy of ``model``, serialized."""
    rng = random.Random(seed)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for _ in range(rng.choice((1, 1, 2, 3))):
        kind, n = rng.randrange(8), rng.choice(g.node)
        t = rng.choice(g.initializer)
        if kind == 0 and n.attribute:  # an attribute's value
            a = rng.choice(n.attribute)
            if a.type == AttributeProto.INT:
                a.i = rng.choice(INTS)
            elif a.type == AttributeProto.INTS:
                a.ints.append(rng.choice(INTS))
            elif a.type == AttributeProto.FLOAT:
                a.f = rng.choice(FLOATS)
        elif kind == 1 and t.dims:  # a weight's dims
            t.dims[rng.randrange(len(t.dims))] = rng.choice(INTS)
        elif kind == 2 and 0 < len(t.raw_data) == 4 * int(np.prod(t.dims)):  # a weight's value, or shape
            v = numpy_helper.to_array(t).copy()
            if rng.randrange(2):
                v.flat[rng.randrange(v.size)] = rng.choice(FLOATS)
            else:
                shape = list(v.shape)
                rng.shuffle(shape)
                v = v.reshape(shape)
            t.CopyFrom(numpy_helper.from_array(v, t.name))
        elif kind == 3:  # a declared dimension
            dims = rng.choice(list(g.input) + list(g.output)).type.tensor_type.shape.dim
            dims[rng.randrange(len(dims))].dim_value = rng.choice((0, 1, 2, 3, 5, 100, 2**31 - 1))
        elif kind == 4 and n.input:  # wiring
            names = [""] + [o for k in g.node for o in k.output] + [i.name for i in g.initializer]
            n.input[rng.randrange(len(n.input))] = rng.choice(names)
        elif kind == 5:  # node order
            i, j = rng.randrange(len(g.node)), rng.randrange(len(g.node))
            a, b = onnx.NodeProto(), onnx.NodeProto()
            a.CopyFrom(g.node[i])
            b.CopyFrom(g.node[j])
            g.node[i].CopyFrom(b)
            g.node[j].CopyFrom(a)
        elif kind == 6:  # op type
            n.op_type = rng.choice(OPS)
        else:  # an attribute more, of any type
            value = rng.choice((rng.choice(INTS), [rng.choice(INTS) for _ in range(rng.randrange(1, 5))],
                                rng.choice(FLOATS)))
            n.attribute.append(helper.make_attribute(rng.choice(ATTRS), value))
    return m.SerializeToString()


@pytest.mark.parametrize("how", ["byte flips", "field edits"])
@pytest.mark.parametrize("name,build", [("tiny_mlp", tiny_mlp), ("small_conv", small_conv)])
def test_mutants_compile_or_fail_with_one_error(tmp_path, name, build, how, monkeypatch):
    monkeypatch.setenv("HETERO_FOLD_LIMIT_MB", "64")  # a mutant may not fold gigabytes here
    base = build(tmp_path / f"{name}.onnx").read_bytes()
    assert run_mutant(tmp_path / f"{name}.onnx") == "compiled"
    model = onnx.load_from_string(base)
    outcomes = {"compiled": 0, "refused": 0}
    failures = []
    start = time.perf_counter()
    for seed in range(MUTANTS_PER_MODEL):
        path = tmp_path / f"mutant-{seed}.onnx"
        path.write_bytes(mutate(base, seed) if how == "byte flips" else edit(model, seed))
        try:
            with time_bound(SECONDS_PER_MUTANT):
                outcomes[run_mutant(path)] += 1
        except Hang:
            failures.append(f"seed {seed}: no answer within {SECONDS_PER_MUTANT} s")
        except Exception as e:  # noqa: BLE001 - anything but hetero's own error is the bug
            failures.append(f"seed {seed}: {type(e).__name__}: {str(e)[:200]}")
        path.unlink()
    seconds = time.perf_counter() - start
    print(f"{name}, {how}: {MUTANTS_PER_MODEL} mutants in {seconds:.1f} s: {outcomes}")
    assert not failures, f"{len(failures)} of {MUTANTS_PER_MODEL} mutants of {name}:\n" + "\n".join(failures)
    assert outcomes["compiled"] and outcomes["refused"]  # the mutants reach both sides
