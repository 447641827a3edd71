"""One module per op; importing this package registers them all."""

from .base import ONNX_TO_OP, REGISTRY, Cycles, Op, op_of, register  # noqa: F401
from . import add, gemm, quantize, relu, reshape, scale_shift, sigmoid, softmax  # noqa: F401  (registration)


def supported_onnx_ops() -> list[str]:
    """ONNX op types the importer accepts, sorted."""
    return sorted(set(ONNX_TO_OP) | {"Constant"})
