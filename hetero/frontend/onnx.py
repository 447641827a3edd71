"""ONNX to IR. Loading is guarded: a file that is not ONNX, names that are not UTF-8, external
data outside the model's folder (in any graph, sub-graphs included) or beyond its file, tensors
whose data disagrees with their dims or type, NaN/Inf in weights, constants or float attributes,
graph inputs of types hetero has no numbers for (strings, complex, int64),
duplicated inputs, nodes without outputs or that break their op's ONNX schema (input and
output counts, attribute names and types), tensors without elements, default-domain opsets outside
[:data:`MIN_OPSET`, the installed onnx's newest] are each one :class:`~hetero.errors.UserError`
naming what. Lowering dispatches every node to the op module that imports its ONNX op type.

Sub-graphs on constants fold at import, whatever their ops (each folded tensor at most
:func:`fold_limit_bytes`: ``HETERO_FOLD_LIMIT_MB``, default 1024 MiB, checked before it is
allocated where ONNX's shape inference knows its shape): ``Shape`` of a computed tensor is a
constant (its per-inference shape with batch 1), and any node whose inputs are all constants is
evaluated (standard ops by ``onnx.reference``, the QONNX quantizers by their op module). A
quantizer folded onto a constant leaves its integers and scale behind (:meth:`ImportContext.quantized`)
so layers can use the model's integer weights; data-movement ops (Transpose, Reshape, ...) on
such a constant carry them along.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from hetero.errors import UserError
from hetero.ir.fixed import FixedType
from hetero.ir.text import printable
from hetero.ir.graph import Graph, Tensor
from hetero.ops.onnx_context import ImportContext, KNOWN_DOMAINS, _DATA_MOVEMENT, attr, check_memory, describe, node_name


def load_model(path: str | Path) -> onnx.ModelProto:
    """Read an ONNX file. External data is read only from inside the model's folder, within
    its file; a UserError names anything malformed (see the module docstring)."""
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
    _check_text(model)
    _load_external_data(model, path)
    return model


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Every tensor with external data, in every graph (sub-graphs of If/Loop/Scan included),
    must lie in a file inside the model's folder, at a non-negative integer offset, with its
    length inside the file."""
    base = path.parent.resolve()
    external = [t for t in _all_tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL]
    for t in external:
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        what = f"{path}: tensor '{printable(t.name)}'"
        target = (base / location).resolve()
        if not location or Path(location).is_absolute() or base not in target.parents:
            raise UserError(f"{what} has external data at '{printable(location)}', outside "
                            f"the model's folder: refused")
        if not target.is_file():
            raise UserError(f"{what}: external data file '{printable(location)}' not found")
        size = target.stat().st_size
        bounds = {}
        for key in ("offset", "length"):
            if key in info:
                try:
                    bounds[key] = int(info[key])
                except ValueError:
                    raise UserError(f"{what}: external data {key} '{printable(info[key])}' is not an "
                                    "integer") from None
                if bounds[key] < 0:
                    raise UserError(f"{what}: external data {key} {bounds[key]} is negative")
        offset = bounds.get("offset", 0)
        if offset > size:
            raise UserError(f"{what}: external data offset {offset} is beyond the end of "
                            f"'{printable(location)}' ({size} bytes)")
        if offset + bounds.get("length", 0) > size:
            raise UserError(f"{what}: external data offset {offset} + length {bounds['length']} is "
                            f"beyond the end of '{printable(location)}' ({size} bytes)")
    if external:
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(base))
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: cannot read external data ({printable(e)})") from None


def _all_graphs(graph: onnx.GraphProto):
    """``graph`` and every sub-graph of its nodes' attributes, recursively."""
    yield graph
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _all_graphs(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _all_graphs(g)


def _all_tensors(model: onnx.ModelProto):
    """Every tensor of every graph: initializers (sparse ones too) and tensor attributes."""
    for g in _all_graphs(model.graph):
        yield from g.initializer
        for sp in g.sparse_initializer:
            yield sp.values
            yield sp.indices
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    yield a.t
                elif a.type == onnx.AttributeProto.TENSORS:
                    yield from a.tensors
                elif a.type == onnx.AttributeProto.SPARSE_TENSOR:
                    yield a.sparse_tensor.values
                    yield a.sparse_tensor.indices


def _check_text(message, where: str = "model") -> None:
    """Every string field of ``message``, recursively, must be valid UTF-8 (protobuf hands an
    invalid one over as bytes, which no output format can print)."""
    for fd, value in message.ListFields():
        repeated = getattr(fd, "is_repeated", None)
        repeated = repeated if repeated is not None else fd.label == fd.LABEL_REPEATED
        items = value if repeated else (value,)
        if fd.type == fd.TYPE_MESSAGE:
            if fd.message_type.GetOptions().map_entry:
                continue
            for item in items:
                _check_text(item, f"{where}.{fd.name}")
        elif fd.type == fd.TYPE_STRING:
            for item in items:
                if isinstance(item, bytes):
                    raise UserError(f"{where}.{fd.name} {printable(item)!r} is not valid UTF-8: "
                                    "not an ONNX model")


def import_onnx(model: onnx.ModelProto | str | Path) -> Graph:
    """Lower an ONNX model to a float IR graph (batch axis removed from every shape)."""
    from hetero.ops import ONNX_TO_OP, supported_onnx_ops  # the op modules import this module

    if not isinstance(model, onnx.ModelProto):
        model = load_model(model)
    else:
        _check_text(model)
    _check_model(model)
    g = model.graph
    constants = {}
    total = sum(int(np.prod(list(init.dims), dtype=np.float64)) for init in g.initializer)
    check_memory(total, f"model '{_model_name(model)}' weights ({total:,} values)")
    for init in g.initializer:
        what = f"initializer '{printable(init.name)}'"
        constants[init.name] = _checked_array(_to_array(init, what), what)
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
            return _checked_array(_to_array(a.t, describe(n)), describe(n))
        if a.name in ("value_float", "value_int"):
            return _checked_array(np.asarray(onnx.helper.get_attribute_value(a)), describe(n))
        if a.name in ("value_floats", "value_ints"):
            return _checked_array(np.asarray(list(onnx.helper.get_attribute_value(a))), describe(n))
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
    try:
        folded = op.fold(n, ctx, values) if op is not None else None
    except (ArithmeticError, IndexError, KeyError, TypeError, ValueError) as e:
        # an op's fold sees only the model's constants: shapes or values it cannot take
        raise UserError(f"{describe(n)}: cannot evaluate on its constant inputs "
                        f"({type(e).__name__}: {printable(str(e).splitlines()[0] if str(e) else '')})") from None
    if folded is None:
        if n.domain not in ("", "ai.onnx"):
            return False
        _check_fold_size(n, ctx, values)
        folded = _evaluate(n, ctx, values)
        quant = ctx.quant_consts.get(n.input[0]) if n.input else None
        if quant is not None and n.op_type in _DATA_MOVEMENT:
            ints, scale, spec = quant
            ctx.quant_consts[n.output[0]] = (_evaluate(n, ctx, [ints] + values[1:])[0],
                                             _evaluate(n, ctx, [scale] + values[1:])[0], spec)
    for name, value in zip(n.output, folded):
        value = np.asarray(value)
        if value.nbytes > fold_limit_bytes():
            _refuse_fold(n, value.nbytes)
        ctx.constants[name] = _checked_array(value, describe(n))
    return True


def fold_limit_bytes() -> int:
    """Bytes one tensor folded at import may take: ``HETERO_FOLD_LIMIT_MB`` MiB (default 1024);
    a model asking more (a ``ConstantOfShape`` of a huge shape) is refused."""
    raw = os.environ.get("HETERO_FOLD_LIMIT_MB", "1024")
    try:
        mib = float(raw)
    except ValueError:
        raise UserError(f"HETERO_FOLD_LIMIT_MB={printable(raw)!r}: not a number of MiB") from None
    if not mib > 0:
        raise UserError(f"HETERO_FOLD_LIMIT_MB={printable(raw)!r}: must be positive")
    return int(mib * 2**20)


def _refuse_fold(n: onnx.NodeProto, nbytes: float) -> None:
    limit = fold_limit_bytes()
    raise UserError(f"{describe(n)}: folding it at import makes a constant of {nbytes / 2**20:,.1f} MiB, "
                    f"more than the {limit / 2**20:g} MiB limit (set HETERO_FOLD_LIMIT_MB to allow "
                    "more): refused")


def _check_fold_size(n: onnx.NodeProto, ctx: ImportContext, values: list) -> None:
    """Before evaluating ``n`` on its constant inputs: the size of each output as ONNX's shape
    inference gives it (small inputs' values passed on: shapes, repeats, pads), refused above
    :func:`fold_limit_bytes`. Outputs whose shape inference cannot tell are checked after."""
    limit = fold_limit_bytes()
    ins = [f"in{k}" if x else "" for k, x in enumerate(n.input)]
    feeds = {name: np.asarray(v) for name, v in zip(ins, values) if name}
    try:
        node = onnx.helper.make_node(n.op_type, ins, [f"out{k}" for k in range(len(n.output))],
                                     **{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute})
        graph = onnx.helper.make_graph(
            [node], "fold",
            [onnx.helper.make_tensor_value_info(k, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
             for k, v in feeds.items()],
            [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output],
            [numpy_helper.from_array(v, k) for k, v in feeds.items() if v.size <= 4096])
        opsets = [o for o in ctx.opsets if o.domain in ("", "ai.onnx")] or [onnx.helper.make_opsetid("", 13)]
        inferred = onnx.shape_inference.infer_shapes(onnx.helper.make_model(graph, opset_imports=opsets),
                                                     data_prop=True)
    except Exception:  # shape inference refuses bad nodes; the evaluator will say why
        return
    for out in inferred.graph.output:
        tt = out.type.tensor_type
        dims = tt.shape.dim
        if not tt.HasField("shape") or not all(d.HasField("dim_value") for d in dims):
            continue
        try:
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).itemsize
        except (KeyError, TypeError):
            itemsize = 8
        nbytes = float(np.prod([max(d.dim_value, 0) for d in dims], dtype=np.float64)) * itemsize
        if nbytes > limit:
            _refuse_fold(n, nbytes)


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
    """``a`` if it holds finite numbers; else a UserError naming ``what``."""
    if a.dtype.kind not in "fiub":
        raise UserError(f"{what}: holds {a.dtype.name} values; only numbers are supported")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise UserError(f"{what}: contains NaN or Inf")
    return a


def _to_array(t: onnx.TensorProto, what: str) -> np.ndarray:
    """The values of ``t``; a UserError when its data type is unknown or its data does not
    match its dims."""
    try:
        onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
    except (KeyError, ValueError):
        raise UserError(f"{what}: unknown data type {t.data_type}") from None
    try:
        return numpy_helper.to_array(t)
    except Exception as e:  # onnx raises ValueError, TypeError, ... for inconsistent tensors
        raise UserError(f"{what}: data does not match its dims {list(t.dims)} and type "
                        f"{onnx.TensorProto.DataType.Name(t.data_type)} ({type(e).__name__})") from None


#: the oldest default-domain opset hetero imports: opset 1 is ONNX's first draft (Pad's
#: ``paddings``, ...), which no exporter writes; opset 2's Pad is tested
MIN_OPSET = 2

#: element types a graph input may not have: text, complex numbers, signed 64-bit integers (a
#: model's indices and token ids, beyond float64's exact integers) and undefined ones
_REFUSED_INPUT_TYPES = (onnx.TensorProto.UNDEFINED, onnx.TensorProto.STRING, onnx.TensorProto.COMPLEX64,
                        onnx.TensorProto.COMPLEX128, onnx.TensorProto.INT64)


def _check_against_schema(n: onnx.NodeProto, opset: int) -> None:
    """A standard op's node must have as many inputs and outputs as its ONNX schema (at the
    model's opset) allows, its required inputs named, and only the schema's attributes, of the
    schema's types (onnxruntime refuses the same nodes)."""
    if n.domain not in ("", "ai.onnx"):
        return
    try:
        schema = onnx.defs.get_schema(n.op_type, opset, "")
    except Exception:  # no such op (or not at this opset): the importer says it is unsupported
        return
    if not schema.min_input <= len(n.input) <= schema.max_input:
        raise UserError(f"{describe(n)}: {len(n.input)} inputs; {n.op_type} (opset {opset}) takes "
                        f"{schema.min_input} to {min(schema.max_input, 2**16)}")
    if not schema.min_output <= len(n.output) <= schema.max_output:
        raise UserError(f"{describe(n)}: {len(n.output)} outputs; {n.op_type} (opset {opset}) gives "
                        f"{schema.min_output} to {min(schema.max_output, 2**16)}")
    single = onnx.defs.OpSchema.FormalParameterOption.Single
    for k, name in enumerate(n.input):
        if not name and k < len(schema.inputs) and schema.inputs[k].option == single:
            raise UserError(f"{describe(n)}: input {k} ('{schema.inputs[k].name}') is required but empty")
    for a in n.attribute:
        spec = schema.attributes.get(a.name)
        if spec is None:
            raise UserError(f"{describe(n)}: {n.op_type} (opset {opset}) has no attribute "
                            f"'{printable(a.name)}'")
        if a.type != spec.type.value:
            got = (onnx.AttributeProto.AttributeType.Name(a.type)
                   if a.type in onnx.AttributeProto.AttributeType.values() else str(a.type))
            raise UserError(f"{describe(n)}: attribute '{printable(a.name)}' must be of type "
                            f"{spec.type.name}, got {got}")


def _check_model(model: onnx.ModelProto) -> None:
    """What every import needs of the model as a whole (see the module docstring)."""
    newest = onnx.defs.onnx_opset_version()
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and not MIN_OPSET <= o.version <= newest:
            raise UserError(f"the model declares opset {o.version} of the default ONNX domain; "
                            f"supported: opsets {MIN_OPSET} to {newest}")
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=newest)
    g = model.graph
    initializers = {i.name for i in g.initializer}
    seen: set[str] = set()
    for vi in g.input:
        if vi.name in seen:
            raise UserError(f"graph input '{printable(vi.name)}' is declared twice")
        seen.add(vi.name)
        if vi.name in initializers:
            continue
        elem = vi.type.tensor_type.elem_type
        if not vi.type.HasField("tensor_type"):
            raise UserError(f"graph input '{printable(vi.name)}' is not a tensor; only tensor inputs "
                            "are supported")
        if elem in _REFUSED_INPUT_TYPES or elem not in onnx.TensorProto.DataType.values():
            name = onnx.TensorProto.DataType.Name(elem) if elem in onnx.TensorProto.DataType.values() else str(elem)
            raise UserError(f"graph input '{printable(vi.name)}' has type {name}: not supported (inputs "
                            "are floats or integers; not strings, complex or int64)")
    defined = seen | initializers
    for n in g.node:
        if not any(n.output):
            raise UserError(f"{describe(n)} has no outputs")
        for o in n.output:
            if o and o in defined:
                raise UserError(f"{describe(n)}: output '{printable(o)}' is already defined by the "
                                "graph (each tensor has one producer)")
            defined.add(o)
        _check_against_schema(n, opset)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.FLOAT:
                bad = not np.isfinite(a.f)
            elif a.type == onnx.AttributeProto.FLOATS:
                bad = not np.isfinite(np.asarray(a.floats, dtype=np.float64)).all()
            else:
                continue
            if bad:
                raise UserError(f"{describe(n)}: attribute '{printable(a.name)}' holds NaN or Inf: refused")


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
