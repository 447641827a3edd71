"""hls4ml-style configuration: precision and parallelism per model, layer type and layer name.

The file (YAML or JSON) has up to three sections, later ones overriding earlier ones::

    Model:
      Precision: fixed<16,6>          # or {default: ..., weight: ..., result: ..., accum: ...}
      ReuseFactor: 1                  # optional; absent: chosen to fit the board
    LayerType:
      Dense: {Precision: {weight: fixed<8,3>}}
      Softmax: {Strategy: argmax}
    LayerName:
      fc1: {ReuseFactor: 4}           # or {PE: 8, SIMD: 4}
      fc1_relu: {Precision: {result: ufixed<8,3>}}

Precision keys: ``default`` (all of a layer's types unless named), ``weight``, ``bias``,
``result``, ``accum`` (absent: wide enough never to overflow) and ``table`` (lookup tables).
Any of them (or the whole Precision) may be ``auto``: chosen from calibration data
(:mod:`hetero.passes.calibrate`, ``--calibrate X.npy``); the most specific level still wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from hetero.errors import UserError
from hetero.ir.fixed import FixedType

DEFAULT_PRECISION = "fixed<16,6,RND,SAT>"  # hls4ml's width; rounding and saturation by default
AUTO = "auto"  # a Precision value: the type is chosen by calibration (hetero.passes.calibrate)
_SECTIONS = ("Model", "LayerType", "LayerName")
_LAYER_KEYS = {"Precision", "ReuseFactor", "PE", "SIMD", "Strategy", "TableSize", "Trace"}
_PRECISION_KEYS = {"default", "weight", "bias", "result", "accum", "table"}


@dataclass(frozen=True)
class LayerConfig:
    """The settings that apply to one layer after merging Model < LayerType < LayerName."""

    precision: Mapping[str, FixedType]
    reuse_factor: int | None = None
    pe: int | None = None
    simd: int | None = None
    strategy: str | None = None
    table_size: int | None = None
    where: str = ""

    def type_of(self, key: str) -> FixedType:
        """The precision of ``key`` (``weight``, ``result``, ...), falling back to ``default``."""
        t = self.precision.get(key) or self.precision["default"]
        if t == AUTO:
            raise UserError(f"{self.where}: Precision {key} is auto, which needs calibration data "
                            "(--calibrate X.npy)")
        return t

    def has(self, key: str) -> bool:
        return key in self.precision


@dataclass(frozen=True)
class Config:
    """A parsed configuration. ``Config()`` is the default: fixed<16,6> everywhere."""

    model: Mapping[str, Any] = field(default_factory=dict)
    layer_type: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    layer_name: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "<default>"

    @classmethod
    def load(cls, path: str | Path | None) -> "Config":
        """Read a YAML or JSON file; every problem raises UserError naming the file and key."""
        if path is None:
            return cls()
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: config file not found")
        try:
            text = path.read_text()
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as e:
            raise UserError(f"{path}: not a valid YAML/JSON config ({str(e).splitlines()[0]})") from None
        return cls.from_dict(data or {}, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "Config":
        if not isinstance(data, Mapping):
            raise UserError(f"{source}: config must be a mapping with keys {', '.join(_SECTIONS)}")
        unknown = set(data) - set(_SECTIONS)
        if unknown:
            raise UserError(f"{source}: unknown config section(s) {', '.join(sorted(map(str, unknown)))}; "
                            f"expected {', '.join(_SECTIONS)}")
        model = dict(data.get("Model") or {})
        _check_layer(model, f"{source}: Model")
        by_type = {str(k): dict(v or {}) for k, v in (data.get("LayerType") or {}).items()}
        by_name = {str(k): dict(v or {}) for k, v in (data.get("LayerName") or {}).items()}
        for k, v in by_type.items():
            _check_layer(v, f"{source}: LayerType {k}")
        for k, v in by_name.items():
            _check_layer(v, f"{source}: LayerName {k}")
        return cls(model, by_type, by_name, source)

    def for_layer(self, name: str, layer_types: tuple[str, ...]) -> LayerConfig:
        """Merge the settings for the layer ``name`` whose type is any of ``layer_types``."""
        merged: dict[str, Any] = {}
        precision: dict[str, Any] = {"default": DEFAULT_PRECISION}
        levels = [self.model] + [self.layer_type[t] for t in layer_types if t in self.layer_type]
        if name in self.layer_name:
            levels.append(self.layer_name[name])
        for level in levels:
            for key, value in level.items():
                if key == "Precision":
                    if isinstance(value, Mapping):
                        precision.update(value)
                    else:
                        precision = {"default": value}
                else:
                    merged[key] = value
        where = f"{self.source}: layer {name}"
        types = {k: _parse_type(v, f"{where} Precision {k}") for k, v in precision.items()}
        return LayerConfig(
            precision=types,
            reuse_factor=_positive(merged.get("ReuseFactor"), f"{where} ReuseFactor"),
            pe=_positive(merged.get("PE"), f"{where} PE"),
            simd=_positive(merged.get("SIMD"), f"{where} SIMD"),
            strategy=str(merged["Strategy"]).lower() if "Strategy" in merged else None,
            table_size=_positive(merged.get("TableSize"), f"{where} TableSize"),
            where=where,
        )

    def unknown_layer_names(self, known: set[str]) -> list[str]:
        return sorted(set(self.layer_name) - known)


def _check_layer(section: Mapping[str, Any], where: str) -> None:
    if not isinstance(section, Mapping):
        raise UserError(f"{where}: expected a mapping")
    unknown = set(section) - _LAYER_KEYS
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                        f"expected {', '.join(sorted(_LAYER_KEYS))}")
    prec = section.get("Precision")
    if isinstance(prec, Mapping):
        bad = set(prec) - _PRECISION_KEYS
        if bad:
            raise UserError(f"{where}: unknown Precision key(s) {', '.join(sorted(map(str, bad)))}; "
                            f"expected {', '.join(sorted(_PRECISION_KEYS))}")


def _parse_type(value: Any, where: str) -> FixedType | str:
    if isinstance(value, FixedType):
        return value
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        t = FixedType.parse(str(value))
    except ValueError as e:
        raise UserError(f"{where}: {e}") from None
    if t.width > 32:
        raise UserError(f"{where}: {value} is wider than the 32 bits supported for data and weights")
    return t


def _positive(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{where}: expected a positive integer, got {value!r}")
    return value
