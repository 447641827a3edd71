"""Dense (fully connected) layers: ONNX Gemm and MatMul (a following bias Add is fused).

Reference: ``y = requant(requant(x @ W + b, accum), result)`` on raw integers, where the sum is
exact (the accumulator type, unless the config names one, is as wide as the sum can ever get).

Hardware: the matrix-vector unit (:class:`hetero.hw.mvau.MVAU`, built by
:meth:`MacOp.mac_hardware`) with ``pe`` outputs x ``simd`` inputs per step (node attrs ``pe``,
``simd``; fully parallel by default): ``F = ceil(n_out/pe) * ceil(n_in/simd)`` steps per
inference, interval ``F``, latency 2 when ``F == 1`` else ``F + 3``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from hetero.errors import UserError
from hetero.ops.onnx_context import attr, describe
from hetero.hw.mvau import folds
from hetero.ops.base import register
from hetero.ops.mac import MacOp

__all__ = ["Dense", "folds"]



class Dense(MacOp):
    name = "Dense"
    onnx_ops = ("Gemm", "MatMul")
    layer_types = ("Dense", "Gemm", "MatMul", "Linear")
    weight_out_axis = 1

    # -- import -------------------------------------------------------------------------------
    def import_onnx(self, node, ctx) -> None:
        x = node.input[0]
        in_shape = ctx.shape(x)
        if len(in_shape) != 1:
            raise UserError(f"{describe(node)}: input '{x}' has per-inference shape {list(in_shape)}; "
                            "only vectors (rank 2 with the batch axis) are supported")
        w_name = node.input[1] if len(node.input) > 1 else ""
        w = np.asarray(ctx.const(node, 1, "weight"), dtype=np.float64)
        if w.ndim != 2:
            raise UserError(f"{describe(node)}: weight shape {list(w.shape)}: a matrix is needed")
        bias = None
        alpha = 1.0
        trans = bool(node.op_type == "Gemm" and attr(node, "transB", 0))
        if node.op_type == "Gemm":
            if attr(node, "transA", 0):
                raise UserError(f"{describe(node)}: transA=1 would transpose the batch axis; not supported")
            if trans:
                w = w.T
            alpha = float(attr(node, "alpha", 1.0))
            w = _float32_finite(node, "alpha", alpha, w * alpha)
            if len(node.input) > 2 and node.input[2]:
                beta = float(attr(node, "beta", 1.0))
                c = _float32_finite(node, "beta", beta,
                                    np.asarray(ctx.const(node, 2, "bias"), dtype=np.float64) * beta)
                if c.size not in (1, w.shape[-1]) or (c.ndim == 2 and c.shape[0] != 1):
                    raise UserError(f"{describe(node)}: bias of shape {list(c.shape)} varies along the "
                                    "batch axis; only a bias per output is supported")
                bias = c.reshape(-1) if c.size == w.shape[-1] else np.broadcast_to(c.reshape(()), (w.shape[-1],))
        if w.ndim != 2 or w.shape[0] != in_shape[0]:
            raise UserError(f"{describe(node)}: weight shape {list(w.shape)} does not match input "
                            f"size {in_shape[0]}")
        n_out = w.shape[1]
        b = np.zeros(n_out) if bias is None else np.array(bias, dtype=np.float64)
        params = {"W": w, "b": b}
        model_w = self.model_weights(ctx, w_name, w, (lambda a: a.T) if trans else (lambda a: a), 1, alpha)
        if model_w is not None:
            params.update(model_w)
        ctx.add(node, self.name, [x], [node.output[0]], [(n_out,)], params=params,
                attrs={"n_in": int(w.shape[0]), "n_out": int(n_out)})

    def absorb_input_affine(self, node, a, c):
        """``W (a x + c) + b`` is ``(a W) x + (W c + b)``: with the model's integer weights
        (``Wq``, which stay as they are, their scale absorbing ``a``) and one scalar ``a``
        (FINN's bipolar-to-binary ``(x + 1) / 2`` prefix); else None."""
        if "Wq" not in node.params or not np.all(a == a[0]) or a[0] == 0:
            return None
        p = node.params
        ch = p.get("a", np.ones(int(node.attrs["n_out"])))
        offset = (c @ p["Wq"].astype(np.float64)) * p["w_scale"] * ch
        return node.evolve(params={"W": p["W"] * a[0], "w_scale": p["w_scale"] * a[0], "b": p["b"] + offset})

    # -- MAC facets ---------------------------------------------------------------------------
    def linear(self, node, x, w):
        return x @ w

    def channel_shape(self, node):
        return (int(node.attrs["n_out"]),)

    def sum_range(self, node, t_x, w, b, prod_frac, frac, t_b):
        """Exact range of every partial and complete sum, in units of 2**-frac (Python ints)."""
        t_x = t_x.dtype
        w = np.asarray(w, dtype=np.int64)
        reach = max(abs(t_x.min_raw), abs(t_x.max_raw)) * int(np.abs(w).max(initial=0)) * max(1, w.shape[0])
        if reach >= 1 << 62:  # int64 could overflow: Python ints
            w = w.astype(object)
        a, c = w * t_x.min_raw, w * t_x.max_raw
        sums_lo, sums_hi = np.minimum(a, c).sum(axis=0), np.maximum(a, c).sum(axis=0)
        lo = hi = 0
        for j in range(w.shape[1]):
            s_lo, s_hi = int(sums_lo[j]) << (frac - prod_frac), int(sums_hi[j]) << (frac - prod_frac)
            bj = int(b[j]) << (frac - t_b.frac_bits)
            lo, hi = min(lo, s_lo, s_lo + bj), max(hi, s_hi, s_hi + bj)
        return lo, hi

    # -- hardware -----------------------------------------------------------------------------
    def mac_dims(self, node):
        return int(node.attrs["n_in"]), int(node.attrs["n_out"])

    def parallelism(self, node):
        pe, simd = self.pe_simd(node, node.attrs["n_in"], node.attrs["n_out"])
        nf, sf = folds(node.attrs["n_in"], node.attrs["n_out"], pe, simd)
        return {"pe": pe, "simd": simd, "folds": nf * sf,
                "reuse_factor": nf * sf, "multipliers": pe * simd}

    def cycles(self, node, graph):
        return self.mac_cycles(node, graph)

    def hardware(self, node, graph):
        return self.mac_hardware(node, graph)

    def hls(self, node, graph):
        """hetero_mac.h ``dense`` with this node's ``pe`` x ``simd`` folding."""
        pe, simd = self.pe_simd(node, node.attrs["n_in"], node.attrs["n_out"])
        return self.mac_hls(node, graph, "dense", {"n_in": node.attrs["n_in"], "n_out": node.attrs["n_out"],
                                                   "pe": pe, "simd": simd})


register(Dense())


#: the largest |alpha * W| (|beta * C|) imported: float32's range (3.4e38) leaves onnxruntime's
#: float32 accumulation of up to 2^28 products of unit-size inputs finite only below about this
_MAX_SCALED = 2.0 ** 100


def _float32_finite(node, name: str, factor: float, scaled: np.ndarray) -> np.ndarray:
    """``scaled`` (a constant times the attribute ``name`` = ``factor``) if ``factor`` is finite
    and every scaled value is at most :data:`_MAX_SCALED` in magnitude; else a UserError naming
    the node: onnxruntime, in float32, computes Inf or NaN there (an Inf, NaN or 1e38
    ``alpha``), where float64 would give numbers."""
    if not np.isfinite(factor) or not (np.abs(scaled) <= _MAX_SCALED).all():
        reach = float(np.abs(scaled).max()) if scaled.size and np.isfinite(factor) else factor
        raise UserError(f"{describe(node)}: {name}={factor:g} times its constant reaches {reach:.3g}, "
                        f"beyond {_MAX_SCALED:.3g} (float32 overflows to Inf/NaN in onnxruntime): refused")
    return scaled
