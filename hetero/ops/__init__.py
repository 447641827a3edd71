"""One module per op; importing this package registers them all."""

from hetero.ops.base import ONNX_TO_OP, REGISTRY, Op, op_of, register  # noqa: F401
from hetero.ops import (add, clip, concat, conv, gemm, leaky_relu, pad, pool, prelu, quantize,  # noqa: F401
                        relu, reshape, resize, scale_shift, sigmoid, softmax, transpose)  # (registration)


def supported_onnx_ops() -> list[str]:
    """ONNX op types the importer accepts, sorted."""
    return sorted(set(ONNX_TO_OP) | {"Constant"})
