"""ONNX to IR. Loading is guarded (not ONNX, external data outside the model's folder, NaN
weights); lowering dispatches every node to the op module that imports its ONNX op type.

Sub-graphs on constants fold at import, whatever their ops: ``Shape`` of a computed tensor is a
constant (its per-inference shape with batch 1), and any node whose inputs are all constants is
evaluated (standard ops by ``onnx.reference``, the QONNX quantizers by their op module). A
quantizer folded onto a constant leaves its integers and scale behind (:meth:`ImportContext.quantized`)
so layers can use the model's integer weights; data-movement ops (Transpose, Reshape, ...) on
such a constant carry them along.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from hetero.errors import UserError
from hetero.ir.fixed import FixedType
from hetero.ir.graph import Graph, Tensor
from hetero.ops.onnx_context import ImportContext, KNOWN_DOMAINS, _DATA_MOVEMENT, attr, check_memory, describe, node_name


def load_model(path: str | Path) -> onnx.ModelProto:
    """Read an ONNX file. External data is read only from inside the model's folder."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if not path.is_file():
        raise UserError(f"{path}: not a file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises several types for garbage input
        raise UserError(f"{path}: not an ONNX model ({type(e).__name__})") from None
    if not model.graph.node and not model.graph.output:
        raise UserError(f"{path}: not an ONNX model (no graph)")
    _load_external_data(model, path)
    return model


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    base = path.parent.resolve()
    external = [t for t in _all_tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL]
    for t in external:
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        target = (base / location).resolve()
        if Path(location).is_absolute() or base not in target.parents:
            raise UserError(f"{path}: tensor '{t.name}' has external data at '{location}', outside "
                            f"the model's folder: refused")
        if not target.is_file():
            raise UserError(f"{path}: tensor '{t.name}': external data file '{location}' not found")
    if external:
        onnx.external_data_helper.load_external_data_for_model(model, str(base))


def _all_tensors(model: onnx.ModelProto):
    yield from model.graph.initializer
    for n in model.graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield a.t


def import_onnx(model: onnx.ModelProto | str | Path) -> Graph:
    """Lower an ONNX model to a float IR graph (batch axis removed from every shape)."""
    from hetero.ops import ONNX_TO_OP, supported_onnx_ops  # the op modules import this module

    if not isinstance(model, onnx.ModelProto):
        model = load_model(model)
    g = model.graph
    constants = {}
    total = sum(int(np.prod(list(init.dims), dtype=np.float64)) for init in g.initializer)
    check_memory(total, f"model '{_model_name(model)}' weights ({total:,} values)")
    for init in g.initializer:
        constants[init.name] = _checked_array(numpy_helper.to_array(init), f"initializer '{init.name}'")
    shapes: dict[str, tuple[int, ...]] = {}
    inputs = [i for i in g.input if i.name not in constants]
    ctx = ImportContext(constants, shapes)
    ctx.opsets = list(model.opset_import)
    ctx.quantized_model = any(n.op_type in _QUANTIZERS for n in g.node)
    ctx.batch_one = bool(inputs) and all(
        i.type.tensor_type.shape.dim and i.type.tensor_type.shape.dim[0].dim_value == 1 for i in inputs)
    for i in inputs:
        shapes[i.name] = _input_shape(i)
        if i.type.tensor_type.elem_type in _INTEGER_TYPES:
            ctx.integer.add(i.name)
            ctx.input_types[i.name] = _INTEGER_TYPES[i.type.tensor_type.elem_type]
    for name, finn_type in finn_input_types(g).items():  # FINN's datatype annotations
        if name in {i.name for i in inputs}:
            ctx.integer.add(name)
            ctx.input_types[name] = finn_type
    unsupported: list[onnx.NodeProto] = []
    poisoned: set[str] = set()  # outputs of nodes that could not be imported
    for n in g.node:
        if n.op_type == "Constant":
            constants[n.output[0]] = _constant_value(n)
            continue
        if any(x in poisoned for x in n.input):
            poisoned.update(n.output)
            if n.op_type not in ONNX_TO_OP or n.domain not in KNOWN_DOMAINS:
                unsupported.append(n)
            continue
        missing = [x for x in n.input if x and x not in constants and ctx.resolve(x) not in shapes
                   and x not in ctx.predicates]
        if missing:
            raise UserError(f"{describe(n)}: input '{missing[0]}' is produced by no earlier node "
                            "(the graph is cyclic or not topologically sorted)")
        if _fold(n, ctx):
            continue
        if n.op_type not in ONNX_TO_OP or n.domain not in KNOWN_DOMAINS:
            unsupported.append(n)
            poisoned.update(n.output)
            continue
        ONNX_TO_OP[n.op_type].import_onnx(n, ctx)
    if unsupported:
        listed = ", ".join(f"{n.op_type}{'(' + n.domain + ')' if n.domain else ''} (node '{node_name(n)}')"
                           for n in unsupported)
        raise UserError(f"unsupported op(s): {listed}; supported: {', '.join(supported_onnx_ops())}")
    from hetero.ops.transpose import finish_import

    finish_import(ctx)  # a Transpose that moved the batch axis must have been undone

    outputs = tuple(ctx.resolve(o.name) for o in g.output)
    for o in outputs:
        if o not in shapes:
            raise UserError(f"graph output '{o}' is a constant or missing; nothing to compute")
    _check_declared_shapes(g, ctx)
    tensors = {name: Tensor(name, shape, integer=name in ctx.integer, quant=ctx.input_types.get(name))
               for name, shape in shapes.items()}
    graph = Graph(name=_model_name(model), nodes=tuple(ctx.nodes), tensors=tensors,
                  inputs=tuple(i.name for i in inputs), outputs=outputs)
    return graph.with_nodes(graph.nodes)


_QUANTIZERS = ("Quant", "BipolarQuant", "Trunc", "QuantizeLinear", "DequantizeLinear", "GreaterOrEqual")
_INTEGER_TYPES = {onnx.TensorProto.INT8: FixedType(8, 8), onnx.TensorProto.UINT8: FixedType(8, 8, False),
                  onnx.TensorProto.INT16: FixedType(16, 16), onnx.TensorProto.UINT16: FixedType(16, 16, False),
                  onnx.TensorProto.INT32: FixedType(32, 32)}


def finn_input_types(g: onnx.GraphProto) -> dict[str, "FixedType | QuantSpec"]:
    """Integer types FINN/QONNX declare for tensors (``quantization_annotation`` with key
    ``finn_datatype``: ``BIPOLAR`` (-1/+1, a bipolar :class:`~hetero.ir.quant.QuantSpec`),
    ``BINARY``, ``INT<k>``, ``UINT<k>``); other annotations (floats, fixed point) are left
    alone."""
    from hetero.ir.quant import QuantSpec

    found = {}
    for ann in g.quantization_annotation:
        for kv in ann.quant_parameter_tensor_names:
            if kv.key != "finn_datatype":
                continue
            m = re.fullmatch(r"(U?)INT(\d+)", kv.value)
            if kv.value in ("BIPOLAR", "BINARY"):
                found[ann.tensor_name] = (QuantSpec("bipolar", np.array(1.0), np.zeros(()), -1, 1)
                                          if kv.value == "BIPOLAR" else FixedType(1, 1, False))
            elif m and 1 <= int(m.group(2)) <= 32:
                found[ann.tensor_name] = FixedType(int(m.group(2)), int(m.group(2)), not m.group(1))
    return found


def _constant_value(n: onnx.NodeProto) -> np.ndarray:
    for a in n.attribute:
        if a.name == "value":
            return _checked_array(numpy_helper.to_array(a.t), describe(n))
        if a.name in ("value_float", "value_int"):
            return np.asarray(onnx.helper.get_attribute_value(a))
        if a.name in ("value_floats", "value_ints"):
            return np.asarray(list(onnx.helper.get_attribute_value(a)))
    raise UserError(f"{describe(n)}: only tensor- and number-valued Constant nodes are supported")


def _fold(n: onnx.NodeProto, ctx: ImportContext) -> bool:
    """Evaluate ``n`` at import if its value does not depend on the inputs; True if it did."""
    from hetero.ops import ONNX_TO_OP

    if n.op_type == "Shape" and n.input[0] not in ctx.constants:
        shape = np.array((1,) + ctx.shape(n.input[0]), dtype=np.int64)
        start, end = attr(n, "start", 0), attr(n, "end", None)
        ctx.constants[n.output[0]] = shape[start:end]
        return True
    if not all(x in ctx.constants for x in n.input if x):
        return False
    values = [ctx.constants[x] if x else None for x in n.input]
    op = ONNX_TO_OP.get(n.op_type) if n.domain in KNOWN_DOMAINS else None
    folded = op.fold(n, ctx, values) if op is not None else None
    if folded is None:
        if n.domain not in ("", "ai.onnx"):
            return False
        folded = _evaluate(n, ctx, values)
        quant = ctx.quant_consts.get(n.input[0]) if n.input else None
        if quant is not None and n.op_type in _DATA_MOVEMENT:
            ints, scale, spec = quant
            ctx.quant_consts[n.output[0]] = (_evaluate(n, ctx, [ints] + values[1:])[0],
                                             _evaluate(n, ctx, [scale] + values[1:])[0], spec)
    for name, value in zip(n.output, folded):
        ctx.constants[name] = _checked_array(np.asarray(value), describe(n))
    return True


def _evaluate(n: onnx.NodeProto, ctx: ImportContext, values: list) -> list[np.ndarray]:
    """Run one standard ONNX node on constant inputs with onnx's reference implementation."""
    from onnx.reference import ReferenceEvaluator

    ins = [f"in{k}" if x else "" for k, x in enumerate(n.input)]
    node = onnx.helper.make_node(n.op_type, ins, [f"out{k}" for k in range(len(n.output))],
                                 **{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute})
    feeds = {name: np.asarray(v) for name, v in zip(ins, values) if name}
    graph = onnx.helper.make_graph(
        [node], "fold",
        [onnx.helper.make_tensor_value_info(k, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for k, v in feeds.items()],
        [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output])
    opsets = [o for o in ctx.opsets if o.domain in ("", "ai.onnx")] or [onnx.helper.make_opsetid("", 13)]
    try:
        model = onnx.helper.make_model(graph, opset_imports=opsets)
        return [np.asarray(v) for v in ReferenceEvaluator(model).run(None, feeds)]
    except Exception as e:  # onnx.reference raises many types for bad nodes
        raise UserError(f"{describe(n)}: cannot evaluate on its constant inputs "
                        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None


def _check_declared_shapes(g: onnx.GraphProto, ctx: ImportContext) -> None:
    """Shapes the model declares (outputs, value_info) must be the ones its ops compute."""
    for vi in list(g.output) + list(g.value_info):
        dims = vi.type.tensor_type.shape.dim
        name = ctx.resolve(vi.name)
        if name not in ctx.shapes or len(dims) < 1 or vi.name in ctx.constants:
            continue
        declared = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
        computed = list(ctx.shapes[name])
        if len(declared) != len(computed) or any(d is not None and d > 0 and d != c
                                                  for d, c in zip(declared, computed)):
            shown = ["?" if d is None else d for d in declared]
            raise UserError(f"tensor '{vi.name}': the model declares shape [N, {', '.join(map(str, shown))}] "
                            f"but its ops compute [N, {', '.join(map(str, computed))}]: inconsistent shapes")


def _checked_array(a: np.ndarray, what: str) -> np.ndarray:
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise UserError(f"{what}: contains NaN or Inf")
    return a


def _input_shape(value_info: onnx.ValueInfoProto) -> tuple[int, ...]:
    dims = value_info.type.tensor_type.shape.dim
    if len(dims) < 2:
        raise UserError(f"graph input '{value_info.name}': expected a batch axis and at least one "
                        f"more, got rank {len(dims)}")
    shape = []
    for d in dims[1:]:
        if not d.HasField("dim_value") or d.dim_value <= 0:
            raise UserError(f"graph input '{value_info.name}': non-batch dimensions must be fixed "
                            f"positive sizes, got {d.dim_param or d.dim_value!r}")
        shape.append(d.dim_value)
    return tuple(shape)


def _model_name(model: onnx.ModelProto) -> str:
    name = model.graph.name or "model"
    return re.sub(r"[^A-Za-z0-9_]", "_", name)[:64] or "model"
