"""What ``hetero import`` shows: per layer the op, shapes, types, MACs, parameters and whether
hardware exists for it (and if not, why), plus totals."""

from __future__ import annotations

from dataclasses import dataclass, field

from hetero.errors import UserError
from hetero.ir.graph import Graph, Node
from hetero.ops import op_of


@dataclass
class LayerSummary:
    name: str
    op: str
    source: str
    in_shape: list[int]
    out_shape: list[int]
    out_type: str
    macs: int
    params: int
    hardware: str  # "yes", or why not
    parallelism: str = ""
    types: dict[str, str] = field(default_factory=dict)


def params_of(node: Node) -> int:
    """Parameters the layer stores (the model's integer copies of the weights not counted twice)."""
    return int(sum(v.size for k, v in node.params.items() if k not in ("Wq", "w_scale", "a")))


def hardware_status(node: Node, graph: Graph) -> str:
    """``"yes"`` if the op can generate hardware for this node, else the reason."""
    if graph.tensors[node.outputs[0]].dtype is None:
        return "no: untyped (runs on the host before the model's input quantizer)"
    try:
        component = op_of(node).hardware(node, graph)
        component._MustUse__silence = True  # built only to know that it can be
    except UserError as e:
        return f"no: {str(e).split(': ', 1)[-1]}"
    except Exception as e:  # a generator that cannot handle this node's settings
        return f"no: {type(e).__name__}: {e}"
    return "yes"


def summarize(graph: Graph, check_hardware: bool = True) -> list[LayerSummary]:
    rows = []
    for n in graph.nodes:
        op = op_of(n)
        macs = getattr(op, "macs", None)
        t_out = graph.tensors[n.outputs[0]]
        rows.append(LayerSummary(
            name=n.name, op=n.op, source=n.source,
            in_shape=list(graph.tensors[n.inputs[0]].shape) if n.inputs else [],
            out_shape=list(t_out.shape), out_type=str(t_out).rsplit("[", 1)[0],
            macs=int(macs(n, graph)) if macs else 0, params=params_of(n),
            hardware=hardware_status(n, graph) if check_hardware else "not checked",
            types={k: str(v) for k, v in n.types.items()},
            parallelism=" ".join(f"{k}={v}" for k, v in op.parallelism(n).items()
                                 if k in ("pe", "simd", "folds"))))
    return rows


def totals(rows: list[LayerSummary]) -> dict[str, int]:
    return {"layers": len(rows), "macs": sum(r.macs for r in rows), "params": sum(r.params for r in rows),
            "without_hardware": sum(r.hardware != "yes" for r in rows)}
