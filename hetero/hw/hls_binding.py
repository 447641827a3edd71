"""What an op tells the HLS C++ backend about one node: which kernel of ``hdl_templates/hls``
computes it and with which compile-time configuration and constant arrays.

Each op's ``hls(node, graph)`` facet (:meth:`hetero.ops.base.Op.hls`) returns an
:class:`HlsCall`; :mod:`hetero.backends.hls.project` adds what every layer shares (the tensor types and
stream layouts) and renders the configuration structs, the arrays and the call sites. The
helpers here turn the reference's own objects (a :class:`~hetero.ir.quant.Requant`, a fixed-point
type) into configuration values, so the C++ computes with exactly the numbers the reference
uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Union

import numpy as np

from hetero.ir.fixed import FixedType
from hetero.ir.quant import Requant

__all__ = ["HlsCall", "Cpp", "requant_config", "no_requant", "int_array"]


class Cpp(str):
    """A C++ expression written by hetero itself (never text from a model), e.g. an enum."""


Value = Union[int, bool, Cpp]

#: hetero.ir.quant rounding names -> the hetero::rounding enum of hetero_common.h
ROUNDING = {"FLOOR": "FLOOR", "CEIL": "CEIL", "TO_ZERO": "TO_ZERO", "HALF_UP": "HALF_UP",
            "HALF_EVEN": "HALF_EVEN", "HALF_AWAY": "HALF_AWAY", "HALF_ZERO": "HALF_ZERO",
            "HALF_DOWN": "HALF_DOWN"}
#: ap_fixed overflow modes -> the hetero::overflow enum
OVERFLOW = {"WRAP": "OVF_WRAP", "SAT": "OVF_SAT", "SAT_ZERO": "OVF_SAT_ZERO", "SAT_SYM": "OVF_SAT_SYM"}


@dataclass(frozen=True)
class HlsCall:
    """One layer's kernel call.

    ``kernel``: a function template in namespace ``hetero`` taking the layer's config struct;
    ``header``: the file of ``hdl_templates/hls`` that defines it; ``config``: compile-time
    members of the config struct; ``types``: extra typedefs (ap_fixed types from the IR);
    ``nested``: nested structs (one per requantization, by member name); ``arrays``: the
    constant arrays passed after the streams, in the kernel's parameter order (name, integer
    values; each gets a typedef ``<name>_t`` of the narrowest C integer type that holds it).
    """

    kernel: str
    header: str
    config: Mapping[str, Value] = field(default_factory=dict)
    types: Mapping[str, FixedType] = field(default_factory=dict)
    nested: Mapping[str, Mapping[str, Value]] = field(default_factory=dict)
    arrays: tuple[tuple[str, np.ndarray], ...] = ()


def int_array(values) -> np.ndarray:
    """``values`` as a flat int64 array of at least one element (C++ has no empty arrays)."""
    a = np.asarray(values).astype(np.int64).reshape(-1)
    return a if a.size else np.zeros(1, dtype=np.int64)


def requant_config(rq: Requant, prefix: str = "", shape: tuple[int, ...] | None = None
                   ) -> tuple[dict[str, Value], tuple[tuple[str, np.ndarray], ...]]:
    """The nested config struct and the ``<prefix>mult`` / ``<prefix>add`` arrays of ``rq``
    (hetero_common.h ``requant``). Multiplier and offset become one value each, or (where either
    varies) one per position of their common broadcast shape, or of ``shape`` when given."""
    mult, add = np.asarray(rq.mult, dtype=np.int64), np.asarray(rq.add, dtype=np.int64)
    if mult.size > 1 or add.size > 1:
        target = np.broadcast_shapes(mult.shape, add.shape) if shape is None else tuple(shape)
        mult, add = _fit(mult, target), _fit(add, target)
    mult, add = int_array(mult), int_array(add)
    ovf = rq.overflow
    cfg: dict[str, Value] = {
        "n_mult": int(mult.size), "shift": int(rq.shift), "zero": int(rq.zero), "lo": int(rq.lo),
        "hi": int(rq.hi), "rounding": Cpp(f"hetero::{ROUNDING[rq.rounding]}"),
        "ovf": Cpp("hetero::OVF_CLIP" if ovf is None else f"hetero::{OVERFLOW[ovf.overflow]}"),
        "ovf_width": 1 if ovf is None else ovf.width, "ovf_signed": True if ovf is None else ovf.signed,
    }
    return cfg, ((f"{prefix}mult", mult), (f"{prefix}add", add))


def _fit(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` laid over ``shape``: the same values in flat order where the sizes agree (a
    per-channel ``(C, 1, 1)`` vector over ``(C,)``), else broadcast."""
    if a.size == int(np.prod(shape)):
        return a.reshape(shape)
    return np.broadcast_to(a.reshape(()) if a.size == 1 else a, shape)


def no_requant(prefix: str = "") -> tuple[dict[str, Value], tuple[tuple[str, np.ndarray], ...]]:
    """A placeholder requantization (identity) for kernels whose other mode is used."""
    one = np.ones(1, dtype=np.int64)
    return requant_config(Requant(one, np.zeros(1, dtype=np.int64), 0, -(1 << 62), 1 << 62), prefix)
