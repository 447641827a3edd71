"""Conformance of the importer and the reference executor with the ONNX backend node tests.

onnx 1.22 ships, for every standard op, small one-node models with inputs and expected outputs
(``onnx/backend/test/data/node/<case>/model.onnx`` and ``test_data_set_0/{input,output}_*.pb``).
:func:`cases` picks those whose model uses the ops in :data:`OPS`; :func:`run_case` imports one
and runs it through :func:`hetero.reference.execute` in float or fixed-point mode.

Adapting a node test to the design (hetero sees a model as a stream of inferences):

* **Batch axis.** The first axis of every graph input is the batch axis, as the importer assumes.
  Test inputs whose batch is 1 (``[1, C, H, W]``) or larger (``[3, 4, 5]``) are both fed as they
  are; ops that act along axis 0 (``Concat axis=0``, ``Softmax axis=0``, ``Squeeze`` of axis 0,
  a ``Transpose`` that moves it, ...) are limits of the design.
* **Data inputs and constants.** The importer needs weights, shapes, scales, pads, ratios, ... to
  be constants. Graph input 0 is data; any other graph input is data only when it feeds an op
  that takes two computed tensors (``Add Sub Mul Div Concat MatMul``: :data:`TWO_TENSOR_OPS`) and
  has the same rank and the same first (batch) dimension as input 0 (so ``Add(x[3,4,5],
  y[3,4,5])`` and ``MatMul(a[2,3,4], b[2,4,3])`` take two computed tensors, while
  ``Add(x[3,4,5], y[5])`` adds a constant and ``MatMul(a[3,4], b[4,3])`` has a weight matrix).
  Every other graph input becomes an initializer holding its test value (the same TensorProto).
* **Float mode** (untyped graph): outputs are compared with the expected ones with rtol 1e-5,
  atol 1e-6 for float32 outputs (float16: rtol 1e-3, atol 1e-3), exactly for integer and bool
  outputs; :data:`EXPECTED_ROUNDED` widens atol for the few cases whose expected values are
  written with fewer digits.
* **Fixed mode**: the graph is typed by :func:`hetero.passes.pipeline.assign_precision` with one type for
  everything, ``fixed<24,I,RND,SAT>`` where ``I`` covers every value of the case (real inputs,
  constants, intermediate values, expected outputs, and the integers of integer inputs and
  outputs: ``2**(I-1) > 4*max|v|``, so nothing saturates); an integer graph input gets its own
  integer type (``int<8>`` for int8, ..., ``uint<32>``). Each output must lie within
  :func:`fixed_tolerance` of the expected one, a first-order bound on the fixed-point error plus
  one LSB: every real graph input and constant starts with half an LSB (its rounding; integers
  0), and each node adds half an LSB (its own rounding) + the sum over its inputs of
  sensitivity x input error + half an LSB per parameter rounding folded inside the op + a table
  error. Sensitivities: 1 for data movement and selection (the ops whose op module declares
  ``moves_values``: Reshape, Transpose, Concat, Pad, MaxPool, Relu, Clip, Resize, ...) and for each operand of Add/Sub; ``max|b|`` and ``max|a|``
  for Mul; ``1/min|b|`` and ``max|a|/min|b|^2`` for Div; ``K*max|W|`` and ``K*max|x|`` for
  Gemm/MatMul/Conv (``K`` the fan-in; alpha/beta folded into the weights/bias); ``max|s/sqrt(var+eps)|``
  for BatchNormalization (+ ``max|x| + 1`` folded-parameter roundings); 1 for AveragePool and
  GlobalAveragePool (+ one rounding of the division); the scale for DequantizeLinear; the function's largest
  slope for LeakyRelu, Elu, Selu, Tanh, Sigmoid. Table error: half a bin times the largest slope
  for the binned-table ops, as each op module states it (:meth:`~hetero.ops.base.Op.table_error`;
  Sigmoid: a TableSize-entry table over [-8, 8); Tanh, Elu, Selu: over [-4, 4), [-8, 0),
  [-8, 0)). QuantizeLinear outputs are
  integers: their input error divided by the scale, plus one step (a rounding may flip).
  While Softmax is computed as argmax in fixed point, its index must be one of the largest
  expected probabilities (within the tolerance).

Results: ``pass``, ``fail`` (wrong values or shape), ``unsupported`` (the importer or the typing
raised :class:`~hetero.errors.UserError`: a limit, or an op not written yet) and ``error`` (any
other exception: a bug). :data:`EXPECTED_UNSUPPORTED` lists the cases that are limits of the
design, each with its reason; every other case is expected to pass in float mode once its op is
written.

``python -m hetero.testing.conformance [--write docs/conformance.md]`` prints (and writes) the table.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import traceback
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from hetero.errors import UserError
from hetero.ops import ONNX_TO_OP, supported_onnx_ops

#: the ONNX op types the importer covers (every op module's ``onnx_ops``), sorted
OPS = tuple(sorted(ONNX_TO_OP))

#: ops that may take two computed tensors (see the module docstring for the data-input rule)
TWO_TENSOR_OPS = ("Add", "Sub", "Mul", "Div", "Concat", "MatMul")

#: ops an ``_expanded`` test may use besides OPS (the importer folds them: no op module)
_EXPANDED_EXTRA = tuple(sorted(set(supported_onnx_ops()) - set(ONNX_TO_OP)))

FLOAT_RTOL, FLOAT_ATOL = 1e-5, 1e-6
FLOAT16_RTOL, FLOAT16_ATOL = 1e-3, 1e-3
#: cases whose expected outputs are written with fewer digits than float32 holds: (atol, why);
#: the absolute tolerance of both modes grows by atol
EXPECTED_ROUNDED = {
    "test_averagepool_2d_ceil_last_window_starts_on_pad":
        (1e-4, "expected values written by hand to 4 decimals (onnx.reference and onnxruntime agree with us)"),
}
FIXED_WIDTH = 24  # bits of the fixed-mode type (a Dense/Conv exact sum of two 24-bit operands fits 62 bits)


# reasons of the design's limits (EXPECTED_UNSUPPORTED)
_BATCH = "operates across the batch axis"
_RANK1 = "rank-1 data input: the batch axis is its only axis (the importer needs rank >= 2)"
_DYNAMIC_W = "dynamic weights: a product of two computed tensors"
_TRAINING = "training mode: statistics over the batch (BatchNormalization) or random masks (Dropout)"
_CONST_OUT = "a graph output that is a constant (Dropout's mask in inference or with ratio 0)"
_NON_NEAREST = "non-nearest resize mode (linear/cubic interpolation)"
_PER_CHANNEL = "per-channel or blocked (de)quantization of a computed tensor: IR tensors carry one scale"
_PER_BATCH = "per-channel (de)quantization along axis 0, the batch axis"
_FLOAT8 = "float8/float4 quantized formats: not fixed point"
_INT_SEMANTICS = "truncating division of integer tensors: the IR computes on real values"
_NON_TENSOR = "optional/sequence values: only tensors are supported"
_EMPTY = "empty tensor (zero-size batch)"
_INDICES = "MaxPool Indices output: flat indices over the whole batch tensor"
_BIAS_PER_ROW = "Gemm bias C that varies along the batch axis"
_SLOPE_PER_ROW = "PRelu slope that varies along the batch axis"
_DIV_TENSORS = "division of two computed tensors: no exact fixed-point form (dividers are not built)"
_MATMUL_ND = "MatMul of a per-inference matrix (rank > 1) by constant weights: dense layers take vectors"
_COMPARISON = ("a comparison or selection on its own: GreaterOrEqual and Where are imported only as a "
               "bipolar quantizer, Where(GreaterOrEqual(x, 0), s, -s)")

#: cases that are limits of the design (not ops missing today), with the reason; float mode must
#: end ``unsupported`` (a UserError) for them
EXPECTED_UNSUPPORTED: dict[str, str] = {
    **dict.fromkeys([
        "test_concat_2d_axis_0", "test_concat_2d_axis_negative_2", "test_concat_3d_axis_0",
        "test_concat_3d_axis_negative_3",
        "test_flatten_axis0", "test_flatten_axis2", "test_flatten_axis3", "test_flatten_negative_axis1",
        "test_flatten_negative_axis2", "test_flatten_negative_axis4",
        "test_gemm_all_attributes", "test_gemm_transposeA",  # transA transposes the batch axis
        "test_reshape_negative_extended_dims", "test_reshape_one_dim", "test_reshape_reordered_all_dims",
        "test_softmax_axis_0", "test_logsoftmax_axis_0", "test_squeeze", "test_unsqueeze_axis_0",
        "test_transpose_all_permutations_2", "test_transpose_all_permutations_3",
        "test_transpose_all_permutations_4", "test_transpose_all_permutations_5", "test_transpose_default",
    ], _BATCH),
    **dict.fromkeys([
        "test_clip_default_inbounds", "test_clip_default_inbounds_expanded", "test_clip_default_int8_inbounds",
        "test_clip_default_int8_inbounds_expanded", "test_clip_example", "test_clip_inbounds",
        "test_clip_min_greater_than_max", "test_clip_outbounds", "test_clip_splitbounds",
        "test_concat_1d_axis_0", "test_concat_1d_axis_negative_1",
        "test_dequantizelinear", "test_dequantizelinear_int16", "test_dequantizelinear_uint16",
        "test_dequantizelinear_int2", "test_dequantizelinear_int4", "test_dequantizelinear_uint2",
        "test_dequantizelinear_uint4",
        "test_div_example", "test_dropout_default_old", "test_elu_example", "test_leakyrelu_example",
        "test_matmul_1d_1d", "test_matmul_1d_3d", "test_mul_example",
        "test_quantizelinear", "test_quantizelinear_int16", "test_quantizelinear_uint16",
        "test_selu_example", "test_sigmoid_example", "test_sub_example", "test_tanh_example",
        "test_hardsigmoid_example", "test_softplus_example", "test_mish_expanded",
    ], _RANK1),
    **dict.fromkeys(["test_matmul_3d", "test_matmul_4d"], _DYNAMIC_W),
    **dict.fromkeys([
        "test_batchnorm_epsilon_training_mode", "test_batchnorm_example_training_mode",
        "test_training_dropout", "test_training_dropout_default", "test_training_dropout_default_mask",
        "test_training_dropout_mask",
    ], _TRAINING),
    **dict.fromkeys(["test_dropout_default_mask", "test_dropout_default_mask_ratio",
                     "test_training_dropout_zero_ratio_mask"], _CONST_OUT),
    **dict.fromkeys([
        "test_resize_downsample_scales_cubic", "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside",
        "test_resize_downsample_scales_cubic_align_corners", "test_resize_downsample_scales_cubic_antialias",
        "test_resize_downsample_scales_linear", "test_resize_downsample_scales_linear_align_corners",
        "test_resize_downsample_scales_linear_antialias",
        "test_resize_downsample_scales_linear_half_pixel_symmetric",
        "test_resize_downsample_sizes_cubic", "test_resize_downsample_sizes_cubic_antialias",
        "test_resize_downsample_sizes_linear_antialias", "test_resize_downsample_sizes_linear_pytorch_half_pixel",
        "test_resize_tf_crop_and_resize", "test_resize_tf_crop_and_resize_axes_2_3",
        "test_resize_tf_crop_and_resize_axes_3_2", "test_resize_tf_crop_and_resize_extrapolation_value",
        "test_resize_upsample_scales_cubic", "test_resize_upsample_scales_cubic_A_n0p5_exclude_outside",
        "test_resize_upsample_scales_cubic_align_corners", "test_resize_upsample_scales_cubic_asymmetric",
        "test_resize_upsample_scales_linear", "test_resize_upsample_scales_linear_align_corners",
        "test_resize_upsample_scales_linear_half_pixel_symmetric", "test_resize_upsample_sizes_cubic",
    ], _NON_NEAREST),
    **dict.fromkeys([
        "test_dequantizelinear_axis", "test_dequantizelinear_blocked", "test_quantizelinear_axis",
        "test_quantizelinear_blocked_asymmetric", "test_quantizelinear_blocked_symmetric",
    ], _PER_CHANNEL),
    **dict.fromkeys(["test_quantizelinear_int2", "test_quantizelinear_int4", "test_quantizelinear_uint2",
                     "test_quantizelinear_uint4"], _PER_BATCH),
    **dict.fromkeys([
        "test_dequantizelinear_e4m3fn", "test_dequantizelinear_e4m3fn_float16",
        "test_dequantizelinear_e4m3fn_zero_point", "test_dequantizelinear_e5m2",
        "test_dequantizelinear_float4e2m1", "test_quantizelinear_e4m3fn", "test_quantizelinear_e5m2",
        "test_quantizelinear_float4e2m1",
    ], _FLOAT8),
    **dict.fromkeys(["test_div_int8", "test_div_int16", "test_div_int32_trunc", "test_div_uint8",
                     "test_div_uint16", "test_div_uint32", "test_div_uint64"], _INT_SEMANTICS),
    **dict.fromkeys(["test_identity_opt", "test_identity_sequence"], _NON_TENSOR),
    "test_reshape_allowzero_reordered": _EMPTY,
    **dict.fromkeys(["test_maxpool_with_argmax_2d_precomputed_pads",
                     "test_maxpool_with_argmax_2d_precomputed_strides"], _INDICES),
    "test_gemm_default_matrix_bias": _BIAS_PER_ROW,
    "test_prelu_example": _SLOPE_PER_ROW,
    "test_div": _DIV_TENSORS,
    **dict.fromkeys(["test_matmul_4d_1d", "test_matmul_bcast"], _MATMUL_ND),
    **dict.fromkeys(["test_greater_equal", "test_greater_equal_bcast", "test_greater_equal_int8",
                     "test_greater_equal_int16", "test_greater_equal_uint8", "test_greater_equal_uint16",
                     "test_greater_equal_uint32", "test_greater_equal_uint64", "test_where_example",
                     "test_where_long_example"], _COMPARISON),
}


# -- cases --------------------------------------------------------------------------------------

def data_dir() -> Path:
    """The folder of onnx's backend node tests (onnx 1.22 ships it; 1.23 does not)."""
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    ops: tuple[str, ...]  # the node op types of the model, in order

    @property
    def op(self) -> str:
        """The op the case is filed under: the first of the model's ops that is in OPS."""
        return next((o for o in self.ops if o in OPS), self.ops[0] if self.ops else "")


@lru_cache(maxsize=1)
def _all_cases() -> tuple[Case, ...]:
    root = data_dir()
    if not root.is_dir():
        return ()
    found = []
    for d in sorted(root.iterdir()):
        model_file = d / "model.onnx"
        if not model_file.is_file():
            continue
        model = onnx.load(str(model_file), load_external_data=False)
        ops = tuple(n.op_type for n in model.graph.node)
        if not any(o in OPS for o in ops):
            continue
        if "_expanded" in d.name and not all(o in OPS or o in _EXPANDED_EXTRA for o in ops):
            continue
        found.append(Case(d.name, d, ops))
    return tuple(found)


def cases() -> list[Case]:
    """The node tests whose model uses an op of OPS (an ``_expanded`` one only if all its ops
    are in OPS, Constant aside), sorted by name."""
    return list(_all_cases())


def case(name: str) -> Case:
    for c in _all_cases():
        if c.name == name:
            return c
    raise KeyError(name)


# -- one case -----------------------------------------------------------------------------------

@dataclass
class Result:
    case: str
    op: str
    mode: str  # "float" or "fixed"
    status: str  # pass, fail, unsupported, error
    message: str = ""
    max_error: float | None = None  # largest |got - expected| (over all outputs)
    details: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.case} [{self.mode}]: {self.status}" + (f": {self.message}" if self.message else "")


def _load_value(path: Path, type_proto: onnx.TypeProto):
    data = path.read_bytes()
    if type_proto.HasField("sequence_type"):
        seq = onnx.SequenceProto()
        seq.ParseFromString(data)
        return numpy_helper.to_list(seq)
    if type_proto.HasField("optional_type"):
        opt = onnx.OptionalProto()
        opt.ParseFromString(data)
        return numpy_helper.to_optional(opt)
    t = onnx.TensorProto()
    t.ParseFromString(data)
    return t


def _array(v):
    return numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v


def _shape_of(v) -> tuple[int, ...] | None:
    return tuple(v.dims) if isinstance(v, onnx.TensorProto) else None


def _data_inputs(model: onnx.ModelProto, values: list) -> list[int]:
    """Indices of the graph inputs that stay inputs (see the module docstring)."""
    g = model.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if not inputs:
        return []
    s0 = _shape_of(values[0])
    data = [0]
    for k in range(1, len(inputs)):
        consumers = {n.op_type for n in g.node if inputs[k].name in n.input}
        sk = _shape_of(values[k])
        if (consumers & set(TWO_TENSOR_OPS) and s0 and sk and len(sk) == len(s0)
                and sk[0] == s0[0]):
            data.append(k)
    return data


@dataclass
class Prepared:
    model: onnx.ModelProto  # non-data inputs turned into initializers
    feeds: dict  # data input name -> value (array, or list/None for non-tensors)
    expected: list[np.ndarray]
    output_names: list[str]
    constants: dict  # name -> array of the initializers made from inputs


def prepare(c: Case) -> Prepared:
    """The case's model with every non-data input made an initializer, its feeds and outputs."""
    model = onnx.load(str(c.path / "model.onnx"), load_external_data=False)
    g = model.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    ds = c.path / "test_data_set_0"
    values = [_load_value(ds / f"input_{k}.pb", i.type) for k, i in enumerate(inputs)]
    keep = set(_data_inputs(model, values))
    feeds, constants = {}, {}
    for k, (inp, v) in enumerate(zip(inputs, values)):
        if k in keep or not isinstance(v, onnx.TensorProto):
            feeds[inp.name] = _array(v)
            continue
        t = onnx.TensorProto()
        t.CopyFrom(v)
        t.name = inp.name
        g.initializer.append(t)
        constants[inp.name] = numpy_helper.to_array(t)
    for inp in [i for i in g.input if i.name in constants]:
        g.input.remove(inp)
    expected = [_array(_load_value(ds / f"output_{k}.pb", o.type)) for k, o in enumerate(g.output)]
    return Prepared(model, feeds, expected, [o.name for o in g.output], constants)


def run_case(path: str | Path | Case, mode: str = "float") -> Result:
    """Import the case's model and run it in ``mode`` ("float" or "fixed"); never raises."""
    c = path if isinstance(path, Case) else _case_at(Path(path))
    try:
        return _run(c, mode)
    except UserError as e:
        return Result(c.name, c.op, mode, "unsupported", str(e))
    except Exception as e:  # a bug somewhere: report it with where it happened
        tb = traceback.extract_tb(e.__traceback__)
        where = next((f"{Path(f.filename).name}:{f.lineno}" for f in reversed(tb)
                      if "hetero" in f.filename), "")
        first = str(e).splitlines()[0] if str(e) else ""
        return Result(c.name, c.op, mode, "error", f"{type(e).__name__}: {first}" + (f" ({where})" if where else ""))


def _case_at(path: Path) -> Case:
    path = Path(path)
    if path.name == "model.onnx":
        path = path.parent
    for c in _all_cases():
        if c.path == path or c.name == path.name:
            return c
    model = onnx.load(str(path / "model.onnx"), load_external_data=False)
    return Case(path.name, path, tuple(n.op_type for n in model.graph.node) or ("Identity",))


def _run(c: Case, mode: str) -> Result:
    from hetero.frontend.onnx import import_onnx
    from hetero.passes.pipeline import assign_precision
    from hetero.reference import execute

    if mode not in ("float", "fixed"):
        raise ValueError(f"mode must be 'float' or 'fixed', got {mode!r}")
    p = prepare(c)
    graph = import_onnx(p.model)
    xs = [p.feeds[name] for name in graph.inputs]
    ranges = None
    if mode == "fixed":
        ranges = _float_values(p)
        config, frac = fixed_config(p, graph, ranges)
        graph = assign_precision(graph, config)
    values = execute(graph, xs)
    got = []
    for o in graph.outputs:
        raw = values[o]
        t = graph.tensors[o]
        if t.dtype is None:
            got.append(np.asarray(raw, dtype=np.float64))
        elif (prod := graph.producer(o)) is not None and prod.attrs.get("strategy") == "argmax":
            got.append(np.asarray(raw, dtype=np.int64))
        else:
            got.append(t.onnx_value(raw))
    if mode == "float":
        return _compare_float(c, got, p.expected)
    lsb = 2.0 ** -frac
    tol = fixed_tolerance(p, ranges, lsb, graph)
    tol = {o: t + EXPECTED_ROUNDED.get(c.name, (0.0, ""))[0] for o, t in tol.items()}
    return _compare_fixed(c, graph, got, p, tol, lsb)


def _compare_float(c: Case, got, expected) -> Result:
    worst = 0.0
    for k, (y, e) in enumerate(zip(got, expected)):
        e = np.asarray(e)
        if y.shape != e.shape:
            return Result(c.name, c.op, "float", "fail", f"output {k}: shape {list(y.shape)}, expected {list(e.shape)}")
        if e.dtype.kind in "iub":
            ok = np.array_equal(y, e.astype(np.float64))
            err = float(np.max(np.abs(y - e.astype(np.float64)), initial=0.0))
            worst = max(worst, err)
            if not ok:
                return Result(c.name, c.op, "float", "fail", f"output {k}: integers differ (max |diff| {err:g})", err)
            continue
        ef = e.astype(np.float64)
        rtol, atol = (FLOAT16_RTOL, FLOAT16_ATOL) if e.dtype == np.float16 else (FLOAT_RTOL, FLOAT_ATOL)
        atol += EXPECTED_ROUNDED.get(c.name, (0.0, ""))[0]
        err = float(np.max(np.abs(y - ef), initial=0.0))
        worst = max(worst, err)
        if not np.allclose(y, ef, rtol=rtol, atol=atol):
            bad = int(np.sum(~np.isclose(y, ef, rtol=rtol, atol=atol)))
            return Result(c.name, c.op, "float", "fail",
                          f"output {k}: {bad}/{e.size} values off (max |diff| {err:g})", err)
    return Result(c.name, c.op, "float", "pass", max_error=worst)


# -- fixed mode ---------------------------------------------------------------------------------

def _float_values(p: Prepared) -> dict[str, np.ndarray]:
    """Every real-valued tensor of the case by ONNX name: feeds, constants, intermediate values
    (by onnx.reference, for multi-node models) and the expected outputs."""
    vals: dict[str, np.ndarray] = {}
    for k, v in list(p.feeds.items()) + list(p.constants.items()):
        if isinstance(v, np.ndarray):
            vals[k] = v
    for init in p.model.graph.initializer:
        vals.setdefault(init.name, numpy_helper.to_array(init))
    for name, e in zip(p.output_names, p.expected):
        vals[name] = np.asarray(e)
    needed = {x for n in p.model.graph.node for x in list(n.input) + list(n.output) if x}
    if needed - set(vals):
        from onnx.reference import ReferenceEvaluator

        try:
            res = ReferenceEvaluator(p.model).run(None, p.feeds, intermediate=True)
            for k, v in res.items():
                vals.setdefault(k, np.asarray(v))
        except Exception:  # tolerance falls back to what is known
            pass
        for n in p.model.graph.node:  # Constant nodes
            if n.op_type == "Constant" and n.output[0] not in vals:
                from hetero.frontend.onnx import _constant_value
                vals[n.output[0]] = _constant_value(n)
    return vals


def _is_real(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


_INT_TYPES = {np.dtype(np.int8): "int<8>", np.dtype(np.uint8): "uint<8>", np.dtype(np.int16): "int<16>",
              np.dtype(np.uint16): "uint<16>", np.dtype(np.int32): "int<32>", np.dtype(np.uint32): "uint<32>"}


def fixed_config(p: Prepared, graph, vals: dict[str, np.ndarray]):
    """The fixed-mode config: ``fixed<24,I,RND,SAT>`` over every real value, integer types for
    integer inputs. Returns (config, fraction bits)."""
    from hetero.ir.config import Config

    # real values, and the integers of data inputs and outputs (not shapes, axes, pads)
    ints = [v for v in list(p.feeds.values()) + list(p.expected)
            if isinstance(v, np.ndarray) and v.dtype.kind in "iu"]
    counted = [v for v in vals.values() if _is_real(v)] + ints
    biggest = max([_amax(v) for v in counted] + [1.0])
    int_bits = max(1, math.floor(math.log2(biggest)) + 4)  # sign + 2**(I-1) > 4*max|v|
    int_bits = min(int_bits, FIXED_WIDTH - 2)
    frac = FIXED_WIDTH - int_bits
    data = {"Model": {"Precision": f"fixed<{FIXED_WIDTH},{int_bits},RND,SAT>"}}
    by_name = {}
    for name in graph.inputs:
        v = p.feeds.get(name)
        if isinstance(v, np.ndarray) and v.dtype.kind in "iu":
            t = _INT_TYPES.get(v.dtype)
            if t is None:  # 64-bit: the narrowest type over the data
                lo, hi = int(v.min(initial=0)), int(v.max(initial=0))
                from hetero.ir.fixed import bits_for_range
                w, signed = bits_for_range(lo, hi)
                t = f"{'int' if signed else 'uint'}<{min(w, 32)}>"
            by_name[name] = {"Precision": t}
    if by_name:
        data["LayerName"] = by_name
    return Config.from_dict(data, source="<conformance>"), frac


def _amax(v) -> float:
    return float(np.max(np.abs(np.asarray(v, dtype=np.float64)), initial=0.0)) if v is not None else 0.0


def _attr(n: onnx.NodeProto, name: str, default=None):
    for a in n.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _sensitivity(n: onnx.NodeProto, vals: dict, table: float = 0.0) -> tuple[list[float], float, float]:
    """For one ONNX node: (per input, the largest sum over an output of |d out / d input|),
    the number of LSB-sized param roundings folded inside the op per output (weights, scales),
    and the table error (``table``: the typed node's :meth:`~hetero.ops.base.Op.table_error`).
    First order; ``vals`` holds the float values of the case. Ops whose op module says
    ``moves_values`` (data movement, selection) pass errors through unscaled."""
    op = n.op_type
    ins = [vals.get(x) if x else None for x in n.input]
    k = len(n.input)
    ones = [1.0] * k
    if op in ONNX_TO_OP and ONNX_TO_OP[op].moves_values:
        return ones, 0.0, 0.0
    if op in ("Add", "Sub"):
        return ones, 0.0, 0.0
    if op == "Mul":
        return [_amax(ins[1]), _amax(ins[0])], 0.0, 0.0
    if op == "Div":
        b = np.abs(np.asarray(ins[1], dtype=np.float64)) if ins[1] is not None else np.ones(1)
        bmin = float(np.min(b, initial=np.inf)) or 1e-30
        return [1.0 / bmin, _amax(ins[0]) / bmin ** 2], 0.0, 0.0
    if op in ("MatMul", "Gemm"):
        a, b = ins[0], ins[1]
        trans_a = op == "Gemm" and _attr(n, "transA", 0)
        kdim = (a.shape[0] if trans_a else a.shape[-1]) if a is not None and a.ndim else 1
        alpha = abs(float(_attr(n, "alpha", 1.0))) if op == "Gemm" else 1.0
        beta = abs(float(_attr(n, "beta", 1.0))) if op == "Gemm" else 1.0
        # the importer folds alpha (beta) into the weights (bias) before they are rounded
        return [kdim * alpha * _amax(b), kdim * max(alpha, 1.0) * _amax(a), max(beta, 1.0)][:k], 0.0, 0.0
    if op == "Conv":
        w = np.asarray(ins[1], dtype=np.float64)
        per_out = np.abs(w).reshape(w.shape[0], -1).sum(axis=1)
        fan_in = w[0].size
        return [float(per_out.max(initial=0.0)), fan_in * _amax(ins[0]), 1.0][:k], 0.0, 0.0
    if op == "BatchNormalization":
        s, var = np.asarray(ins[1], np.float64), np.asarray(ins[4], np.float64)
        a = s / np.sqrt(var + float(_attr(n, "epsilon", 1e-5)))
        # y = a*x + b with a and b folded, then rounded: |x| + 1 LSB-sized roundings
        return [float(np.max(np.abs(a), initial=0.0))] + [0.0] * (k - 1), _amax(ins[0]) + 1.0, 0.0
    if op in ("AveragePool", "GlobalAveragePool"):
        return ones, 1.0, 0.0  # the division rounds once more
    if op == "LeakyRelu":
        alpha = abs(float(_attr(n, "alpha", 0.01)))
        return [max(1.0, alpha)], _amax(ins[0]), 0.0
    if op == "Elu":
        alpha = abs(float(_attr(n, "alpha", 1.0)))
        return [max(1.0, alpha)], 1.0, table
    if op == "Selu":
        alpha = abs(float(_attr(n, "alpha", 1.67326319217681884765625)))
        gamma = abs(float(_attr(n, "gamma", 1.05070102214813232421875)))
        return [gamma * max(1.0, alpha)], 1.0, table
    if op == "Sigmoid":
        return [0.25], 0.0, table
    if op == "Tanh":
        return [1.0], 0.0, table
    if op == "Softplus":
        return [1.0], 0.0, table
    if op == "Softmax":  # compared as argmax while that is the fixed-point strategy
        return [1.0], 0.0, table
    if op == "QuantizeLinear":
        scale = np.asarray(ins[1], dtype=np.float64)
        return [1.0 / float(np.min(np.abs(scale)))] + [0.0] * (k - 1), 0.0, 1.0  # a rounding may flip
    if op == "DequantizeLinear":
        return [_amax(ins[1])] + [0.0] * (k - 1), 0.0, 0.0
    return ones, 0.0, 0.0


def fixed_tolerance(p: Prepared, vals: dict, lsb: float, graph=None) -> dict[str, float]:
    """The allowed |got - expected| of each graph output in fixed mode.

    Errors propagate in ONNX node order: a real graph input or constant starts with half an LSB
    (its rounding), an integer one with 0; a node's output error is half an LSB (its own
    rounding) + sum over inputs of sensitivity * input error + half an LSB per param rounding
    folded inside the op + the table error of table-based ops (all from :func:`_sensitivity`).
    The tolerance is that bound plus one LSB. QuantizeLinear outputs are integers: their error is
    in integer steps (one step for a rounding that may flip)."""
    from hetero.ops import op_of
    from hetero.ops.onnx_context import describe

    tables = {}  # ONNX node description -> table error of the typed IR node that computes it
    for node in (graph.nodes if graph is not None else ()):
        e = op_of(node).table_error(node)
        if e:
            tables[node.source] = e
    err: dict[str, float] = {}
    for name, v in vals.items():
        err[name] = 0.5 * lsb if _is_real(v) else 0.0
    for n in p.model.graph.node:
        if n.op_type == "Constant":
            err[n.output[0]] = 0.5 * lsb
            continue
        sens, params, table = _sensitivity(n, vals, tables.get(describe(n), 0.0))
        e_in = sum(s * err.get(x, 0.5 * lsb) for s, x in zip(sens, n.input) if x)
        if n.op_type == "QuantizeLinear":
            e = e_in + table
        else:
            e = 0.5 * lsb + e_in + 0.5 * lsb * params + table
        for o in n.output:
            err[o] = e
    return {o: err.get(o, 0.5 * lsb) + lsb for o in p.output_names}


def _compare_fixed(c: Case, graph, got, p: Prepared, tol: dict[str, float], lsb: float) -> Result:
    worst, detail = 0.0, {"lsb": lsb}
    for k, (o, y, e) in enumerate(zip(p.output_names, got, p.expected)):
        e = np.asarray(e)
        ef = e.astype(np.float64)
        prod = graph.producer(graph.outputs[k])
        if prod is not None and prod.attrs.get("strategy") == "argmax":
            if y.ndim == e.ndim and y.shape[-1:] == (1,):
                y = y[..., 0]
            if y.shape != e.shape[:-1]:
                return Result(c.name, c.op, "fixed", "fail", f"output {k} (argmax): shape {list(y.shape)}, "
                              f"expected {list(e.shape[:-1])}")
            picked = np.take_along_axis(ef, y[..., None], axis=-1)[..., 0]
            if np.any(picked < ef.max(axis=-1) - tol[o]):
                return Result(c.name, c.op, "fixed", "fail", f"output {k}: argmax picks a smaller probability")
            detail[o] = "argmax"
            continue
        if y.shape != e.shape:
            return Result(c.name, c.op, "fixed", "fail", f"output {k}: shape {list(y.shape)}, expected {list(e.shape)}")
        err = float(np.max(np.abs(y - ef), initial=0.0))
        worst = max(worst, err)
        detail[o] = {"max_error": err, "tolerance": tol[o]}
        if err > tol[o] * (1 + 1e-9):
            bad = int(np.sum(np.abs(y - ef) > tol[o]))
            return Result(c.name, c.op, "fixed", "fail",
                          f"output {k}: {bad}/{e.size} values off (max |diff| {err:.3g} > tolerance "
                          f"{tol[o]:.3g} = {tol[o] / lsb:.1f} LSB)", err, detail)
    return Result(c.name, c.op, "fixed", "pass", max_error=worst, details=detail)


# -- report -------------------------------------------------------------------------------------

def reason_of(r: Result) -> str:
    """A short reason for an unsupported/failed/error result, for grouping."""
    if r.status == "pass":
        return ""
    if r.status == "unsupported" and r.case in EXPECTED_UNSUPPORTED:
        return EXPECTED_UNSUPPORTED[r.case]
    m = r.message
    ops = re.match(r"unsupported op\(s\): (.*?); supported:", m)
    if ops:
        names = sorted({x.split(" ")[0] for x in ops.group(1).split(", ")})
        return "op not implemented: " + ", ".join(names)
    m = re.sub(r"^\w+ node '[^']*': ", "", m)
    m = re.sub(r"'[^']*'", "'…'", m)
    m = re.sub(r"\[[-0-9, ]*\]", "[…]", m)
    m = re.sub(r"\b\d+(\.\d+)?(e-?\d+)?\b", "N", m)
    return m[:140]


def short_message(r: Result) -> str:
    """The result's message for one case: a missing op named briefly, else the message itself."""
    ops = re.match(r"unsupported op\(s\): (.*?); supported:", r.message)
    if ops:
        return reason_of(r)
    return r.message if len(r.message) <= 200 else r.message[:199] + "…"


def _fixed_summary(x: Result) -> str:
    """Largest error over the outputs, in LSB of the fixed-mode type, against its tolerance."""
    lsb = x.details.get("lsb")
    worst = max((v for v in x.details.values() if isinstance(v, dict)),
                key=lambda v: v["max_error"] / v["tolerance"], default=None)
    if worst is None or not lsb:
        return "fixed: argmax matches" if "argmax" in x.details.values() else ""
    return (f"fixed: max error {worst['max_error'] / lsb:.2f} LSB, tolerance {worst['tolerance'] / lsb:.2f} "
            f"LSB (LSB 2^{round(math.log2(lsb))})")


def run_all(selected: list[Case] | None = None) -> list[tuple[Case, Result, Result]]:
    out = []
    for c in selected if selected is not None else cases():
        out.append((c, run_case(c, "float"), run_case(c, "fixed")))
    return out


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown(results: list[tuple[Case, Result, Result]]) -> str:
    lines = ["# ONNX backend node-test conformance", "",
             f"Generated by `python -m hetero.testing.conformance --write docs/conformance.md` (onnx "
             f"{onnx.__version__}): every node test of onnx's backend suite whose model uses one of "
             "the ops below, imported and run by the reference executor in float mode (untyped "
             "graph) and fixed mode (typed by `assign_precision`). The rules (data inputs vs. "
             "constants, tolerances, the fixed-point type) are in the docstring of "
             "`hetero/testing/conformance.py`. *expected unsupported*: limits of the design listed in "
             "`EXPECTED_UNSUPPORTED`.", ""]
    by_op: dict[str, list] = {}
    for c, f, x in results:
        by_op.setdefault(c.op, []).append((c, f, x))
    total = Counter()
    lines += ["| op | cases | pass float | pass fixed | unsupported (expected) | fail | error | main reasons |",
              "|---|---|---|---|---|---|---|---|"]
    for op in OPS:
        rows = by_op.get(op, [])
        n = len(rows)
        pf = sum(f.status == "pass" for _, f, _ in rows)
        px = sum(x.status == "pass" for _, _, x in rows)
        un = sum(f.status == "unsupported" for _, f, _ in rows)
        ex = sum(f.status == "unsupported" and c.name in EXPECTED_UNSUPPORTED for c, f, _ in rows)
        fl = sum(f.status == "fail" for _, f, _ in rows)
        er = sum(f.status == "error" or x.status == "error" for _, f, x in rows)
        reasons = Counter(reason_of(f) for _, f, _ in rows if f.status != "pass")
        main = "; ".join(f"{_md(r)} ({k})" for r, k in reasons.most_common(3))
        total.update(cases=n, pf=pf, px=px, un=un, ex=ex, fl=fl, er=er)
        lines.append(f"| {op} | {n} | {pf} | {px} | {un} ({ex}) | {fl} | {er} | {main} |")
    lines.append(f"| **all** | {total['cases']} | {total['pf']} | {total['px']} | "
                 f"{total['un']} ({total['ex']}) | {total['fl']} | {total['er']} | |")
    lines += ["", "*fail* and *error* count float-mode results (*error* also fixed-mode ones); "
              "*pass fixed* counts cases within the fixed-point tolerance.", "",
              "## Rules", "", _rules(), "",
              "## Reasons, all cases (float mode)", "", "| reason | cases |", "|---|---|"]
    for r, k in Counter(reason_of(f) for _, f, _ in results if f.status != "pass").most_common():
        lines.append(f"| {_md(r)} | {k} |")
    lines += ["", "## Cases", "", "| case | op | float | fixed | detail |", "|---|---|---|---|---|"]
    for c, f, x in sorted(results, key=lambda t: (OPS.index(t[0].op), t[0].name)):
        if c.name in EXPECTED_UNSUPPORTED and f.status == "unsupported":
            detail = "expected: " + EXPECTED_UNSUPPORTED[c.name]
        elif c.name in EXPECTED_UNSUPPORTED:
            detail = (f"**listed as a limit ({EXPECTED_UNSUPPORTED[c.name]}) but not refused**: "
                      + short_message(f))
        elif f.status != "pass":
            detail = short_message(f)
        elif x.status == "pass":
            detail = _fixed_summary(x)
        else:
            detail = "fixed: " + short_message(x)
        lines.append(f"| {c.name} | {c.op} | {f.status} | {x.status} | {_md(detail)} |")
    return "\n".join(lines) + "\n"


def _rules() -> str:
    """The module docstring's rules (from "Adapting" up to the CLI line), as markdown."""
    doc = __doc__ or ""
    start, end = doc.find("Adapting a node test"), doc.find("``python -m hetero.testing.conformance")
    text = doc[start:end].strip() if start >= 0 and end > start else ""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hetero.testing.conformance",
                                 description="Run onnx's backend node tests of OPS through the reference executor.")
    ap.add_argument("--write", metavar="FILE", help="also write the markdown report to FILE")
    ap.add_argument("--only", metavar="TEXT", help="only cases whose name contains TEXT")
    args = ap.parse_args(argv)
    if not data_dir().is_dir():
        print(f"error: no node tests under {data_dir()} (onnx {onnx.__version__}; 1.22 ships them)",
              file=sys.stderr)
        return 2
    selected = [c for c in cases() if not args.only or args.only in c.name]
    text = markdown(run_all(selected))
    print(text, end="")
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
