"""LeakyRelu: ``y = x`` for ``x >= 0``, ``y = alpha * x`` below (``alpha`` default 0.01): a
:class:`~hetero.ops.prelu.PRelu` with one slope, ``alpha`` (as ONNX's float32), kept as
``params["slope"]``. Types, reference, hardware, cycles and the HLS call are PRelu's: two exact
integer requantizations of the centred input and a multiplexer per lane (hetero_activation.h
``leaky_relu`` with one negative multiplier)."""

from __future__ import annotations

import numpy as np

from hetero.ops.base import register
from hetero.ops.onnx_context import attr
from hetero.ops.prelu import PRelu


class LeakyRelu(PRelu):
    name = "LeakyRelu"
    onnx_ops = ("LeakyRelu",)
    layer_types = ("Activation", "LeakyReLU")

    def import_onnx(self, node, ctx) -> None:
        x = node.input[0]
        alpha = np.float64(np.float32(attr(node, "alpha", 0.01)))  # ONNX: float32
        ctx.add(node, self.name, [x], [node.output[0]], [ctx.shape(x)],
                params={"slope": np.asarray(alpha)})


register(LeakyRelu())
