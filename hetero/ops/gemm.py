"""Dense (fully connected) layers: ONNX Gemm and MatMul (a following bias Add is fused).

Reference: ``y = requant(requant(x @ W + b, accum), result)`` on raw integers, where the sum is
exact (the accumulator type, unless the config names one, is as wide as the sum can ever get).

Hardware (:class:`DenseHW`): ``pe`` outputs x ``simd`` inputs multiplied per cycle, so one
inference takes ``F = ceil(n_out/pe) * ceil(n_in/simd)`` steps. With ``F == 1`` (fully parallel)
the weights are constants in the multipliers and the layer is a two-stage pipeline taking a new
input every cycle. With ``F > 1`` the weights sit in a ROM (one word of pe*simd weights per step,
read synchronously) and the input vector is held in a buffer while the steps run; the next input
is accepted during the last step, so the interval is exactly F. All stages advance together on
``en = ~o.valid | o.ready`` (a stalled output stalls the layer).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..errors import UserError
from ..fixed import FixedType
from ..hw.fixed_hw import requantize as hw_requantize
from ..hw.fixed_hw import shape_of, vector_stream
from ..onnx_import import attr, describe
from .base import Cycles, register
from .mac import MacOp



def folds(n_in: int, n_out: int, pe: int, simd: int) -> tuple[int, int]:
    """(output groups, input groups) for a layer of that size and parallelism."""
    return math.ceil(n_out / pe), math.ceil(n_in / simd)


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
        bias = None
        alpha = 1.0
        trans = bool(node.op_type == "Gemm" and attr(node, "transB", 0))
        if node.op_type == "Gemm":
            if attr(node, "transA", 0):
                raise UserError(f"{describe(node)}: transA=1 would transpose the batch axis; not supported")
            if trans:
                w = w.T
            alpha = float(attr(node, "alpha", 1.0))
            w = w * alpha
            if len(node.input) > 2 and node.input[2]:
                c = np.asarray(ctx.const(node, 2, "bias"), dtype=np.float64) * float(attr(node, "beta", 1.0))
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

    # -- MAC facets ---------------------------------------------------------------------------
    def linear(self, node, x, w):
        return x @ w

    def channel_shape(self, node):
        return (int(node.attrs["n_out"]),)

    def sum_range(self, node, t_x, w, b, prod_frac, frac, t_b):
        """Exact range of every partial and complete sum, in units of 2**-frac (Python ints)."""
        t_x = t_x.dtype
        lo = hi = 0
        for j in range(w.shape[1]):
            terms = [(int(wij) * t_x.min_raw, int(wij) * t_x.max_raw) for wij in w[:, j]]
            s_lo = sum(min(t) for t in terms) << (frac - prod_frac)
            s_hi = sum(max(t) for t in terms) << (frac - prod_frac)
            bj = int(b[j]) << (frac - t_b.frac_bits)
            lo, hi = min(lo, s_lo, s_lo + bj), max(hi, s_hi, s_hi + bj)
        return lo, hi

    # -- hardware -----------------------------------------------------------------------------
    def _pe_simd(self, node) -> tuple[int, int]:
        return int(node.attrs.get("pe", node.attrs["n_out"])), int(node.attrs.get("simd", node.attrs["n_in"]))

    def parallelism(self, node):
        pe, simd = self._pe_simd(node)
        nf, sf = folds(node.attrs["n_in"], node.attrs["n_out"], pe, simd)
        return {"pe": pe, "simd": simd, "folds": nf * sf,
                "reuse_factor": nf * sf, "multipliers": pe * simd}

    def cycles(self, node, graph):
        return self.mac_cycles(node, graph)

    def hardware(self, node, graph):
        return self.mac_hardware(node, graph)


class DenseHW(wiring.Component):
    """``o = requant(i @ W + b)`` with ``pe * simd`` multipliers; see the module docstring."""

    def __init__(self, w: np.ndarray, b: np.ndarray, t_x: FixedType, t_w: FixedType, t_b: FixedType,
                 t_sum: FixedType, t_acc: FixedType, t_out: FixedType, pe: int, simd: int):
        self.n_in, self.n_out = w.shape
        self.w, self.b = w, b
        self.t_x, self.t_w, self.t_sum, self.t_acc, self.t_out = t_x, t_w, t_sum, t_acc, t_out
        self.pe, self.simd = min(pe, self.n_out), min(simd, self.n_in)
        self.nf, self.sf = folds(self.n_in, self.n_out, self.pe, self.simd)
        self.prod_shift = t_sum.frac_bits - t_x.frac_bits - t_w.frac_bits
        self.bias_acc = [int(v) << (t_sum.frac_bits - t_b.frac_bits) for v in b]
        super().__init__({"i": In(vector_stream(t_x, self.n_in)), "o": Out(vector_stream(t_out, self.n_out))})

    def _weight(self, nf: int, sf: int, p: int, s: int) -> int:
        i, j = sf * self.simd + s, nf * self.pe + p
        return int(self.w[i, j]) if i < self.n_in and j < self.n_out else 0

    def _fit(self, v):
        """``v`` wrapped to the sum's width if it is wider (exact: every sum fits that width)."""
        return v[: self.t_sum.width].as_signed() if len(v) > self.t_sum.width else v

    def _sum_tree(self, terms: list) -> object:
        """Balanced adder tree; each adder only as wide as its operands need."""
        if not terms:
            return Const(0, signed(self.t_sum.width))
        while len(terms) > 1:
            pairs = [self._fit(terms[k] + terms[k + 1]) for k in range(0, len(terms) - 1, 2)]
            terms = pairs + ([terms[-1]] if len(terms) % 2 else [])
        return terms[0]

    def elaborate(self, platform) -> Module:
        m = Module()
        pe, simd, nf_n, sf_n = self.pe, self.simd, self.nf, self.sf
        steps = nf_n * sf_n
        sum_shape = signed(self.t_sum.width)
        x_shape, w_shape = shape_of(self.t_x), shape_of(self.t_w)
        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)

        # product stage registers
        p_valid, p_first, p_last = Signal(), Signal(), Signal()
        p_nf = Signal(range(max(nf_n, 2)))
        # products are registered at their natural width (so synthesis can pack the register
        # into the DSP block) and aligned to the sum's fraction bits in the accumulate stage
        prod_shape = signed(self.t_x.width + self.t_w.width + (0 if self.t_x.signed and self.t_w.signed else 1))
        p_prod = [[Signal(prod_shape, name=f"prod_{p}_{s}") for s in range(simd)] for p in range(pe)]

        def product(x, w):
            return x * w

        if steps == 1:
            m.d.comb += self.i.ready.eq(en)
            with m.If(en):
                m.d.sync += [p_valid.eq(self.i.valid), p_first.eq(1), p_last.eq(1), p_nf.eq(0)]
                for p in range(pe):
                    for s in range(simd):
                        w = self._weight(0, 0, p, s)
                        m.d.sync += p_prod[p][s].eq(product(self.i.payload[s], w) if w else 0)
        else:
            busy = Signal()
            sf, nf, step = Signal(range(max(sf_n, 2))), Signal(range(max(nf_n, 2))), Signal(range(steps))
            xbuf = Signal(data.ArrayLayout(x_shape, self.n_in))
            last_step = (sf == sf_n - 1) & (nf == nf_n - 1)
            take = ~busy | last_step
            m.d.comb += self.i.ready.eq(en & take)
            # weight ROM: one word of pe*simd weights per step, read synchronously
            ww = self.t_w.width
            words = []
            for k in range(steps):
                word = 0
                for p in range(pe):
                    for s in range(simd):
                        word |= (self._weight(k // sf_n, k % sf_n, p, s) & ((1 << ww) - 1)) << ((p * simd + s) * ww)
                words.append(word)
            m.submodules.weights = rom = Memory(shape=unsigned(pe * simd * ww), depth=steps, init=words)
            rd = rom.read_port(domain="sync")
            m.d.comb += [rd.addr.eq(step), rd.en.eq(en)]
            # stage 1: the input slice for this step, aligned with the ROM word
            s1_valid, s1_first, s1_last = Signal(), Signal(), Signal()
            s1_nf = Signal(range(max(nf_n, 2)))
            s1_x = Signal(data.ArrayLayout(x_shape, simd))
            with m.If(en):
                with m.If(busy):
                    with m.If(sf == sf_n - 1):
                        m.d.sync += [sf.eq(0), nf.eq(0)]
                        with m.If(nf != nf_n - 1):
                            m.d.sync += nf.eq(nf + 1)
                    with m.Else():
                        m.d.sync += sf.eq(sf + 1)
                    m.d.sync += step.eq(step + 1)
                    with m.If(last_step):
                        m.d.sync += [busy.eq(self.i.valid), step.eq(0)]
                with m.Else():
                    m.d.sync += busy.eq(self.i.valid)
                with m.If(take & self.i.valid):
                    m.d.sync += xbuf.eq(self.i.payload)
                m.d.sync += [s1_valid.eq(busy), s1_first.eq(sf == 0), s1_last.eq(sf == sf_n - 1), s1_nf.eq(nf)]
                with m.Switch(sf):
                    for k in range(sf_n):
                        with m.Case(k):
                            for s in range(simd):
                                i = k * simd + s
                                m.d.sync += s1_x[s].eq(xbuf[i] if i < self.n_in else 0)
                m.d.sync += [p_valid.eq(s1_valid), p_first.eq(s1_first), p_last.eq(s1_last), p_nf.eq(s1_nf)]
                for p in range(pe):
                    for s in range(simd):
                        wv = rd.data[(p * simd + s) * ww:(p * simd + s + 1) * ww]
                        wv = wv.as_signed() if w_shape.signed else wv
                        m.d.sync += p_prod[p][s].eq(product(s1_x[s], wv))

        # accumulate stage: sum the products, accumulate over input groups, requantize when done
        outbuf = [Signal(shape_of(self.t_out), name=f"out_{j}") for j in range(self.n_out)]
        m.d.comb += [self.o.payload[j].eq(outbuf[j]) for j in range(self.n_out)]
        with m.If(en):
            m.d.sync += self.o.valid.eq(p_valid & p_last & (p_nf == nf_n - 1))
            for p in range(pe):
                acc = Signal(sum_shape, name=f"acc_{p}")
                total, res = Signal(sum_shape, name=f"total_{p}"), Signal(shape_of(self.t_out), name=f"res_{p}")
                aligned = [self._fit(prod << self.prod_shift) for prod in p_prod[p]]
                m.d.comb += total.eq(Mux(p_first, 0, acc) + self._sum_tree(aligned))
                with m.If(p_valid):
                    m.d.sync += acc.eq(total)
                    with m.If(p_last):
                        biases = [self.bias_acc[k * pe + p] if k * pe + p < self.n_out else 0 for k in range(nf_n)]
                        bias = Array(Const(v, sum_shape) for v in biases)[p_nf] if nf_n > 1 else Const(biases[0], sum_shape)
                        full = (total + bias)[: self.t_sum.width].as_signed()
                        m.d.comb += res.eq(hw_requantize(hw_requantize(full, self.t_sum.frac_bits, self.t_acc),
                                                         self.t_acc.frac_bits, self.t_out))
                        with m.Switch(p_nf):
                            for k in range(nf_n):
                                j = k * pe + p
                                if j < self.n_out:
                                    with m.Case(k):
                                        m.d.sync += outbuf[j].eq(res)
        return m


register(Dense())
