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

A type written without quotes inside a YAML flow mapping (``{weight: fixed<8,3>}``, whose comma
YAML would otherwise read as the end of the value) is read as the one string it spells.

Limits (anything beyond is a :class:`ConfigError` naming the file, and the key where there is
one, before any other work): a file of at most :data:`MAX_FILE_BYTES` (1 MiB), nested at most
:data:`MAX_DEPTH` (32) levels, of at most :data:`MAX_VALUES` (100,000) values counting every
use of a YAML alias (``*name``) in full; types at most 32 bits wide with integer bits within
``-32..32`` (:data:`MAX_INT_BITS`); ``ReuseFactor``, ``PE`` and ``SIMD`` positive integers up to
:data:`MAX_FACTOR` (2**31 - 1); ``TableSize`` a power of two from 16 to :data:`MAX_TABLE_SIZE`
(65,536); ``Strategy`` a string.
"""

from __future__ import annotations

import json
import re
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
MAX_FILE_BYTES = 1 << 20  # a config file's size
MAX_DEPTH = 32  # nesting of mappings and lists (a real config has four levels)
MAX_VALUES = 100_000  # every mapping, list and scalar, each alias counted in full
MAX_WIDTH = 32  # bits of a data or weight type
MAX_INT_BITS = 32  # |integer bits| of a type
MAX_FACTOR = 2**31 - 1  # ReuseFactor, PE, SIMD
MAX_TABLE_SIZE = 1 << 16  # TableSize entries
# an unquoted type in YAML (flow mappings split it at its comma): quoted before parsing
_BARE_TYPE = re.compile(r"(?<![\w\"'<])((?:ap_)?u?(?:fixed|int)<[^<>\"'\n]*>)")


class ConfigError(UserError):
    """A config file (or mapping) that cannot be used: its message names the file and the key.
    Exit code 2, like every UserError; a type of its own so that callers tell a bad config from
    a model that cannot be typed without reading the message."""


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
            raise ConfigError(f"{self.where}: Precision {key} is auto, which needs calibration data "
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
        """Read a YAML or JSON file (``.json``: JSON, anything else YAML); every problem, the
        limits of the module docstring included, raises ConfigError naming the file and key."""
        if path is None:
            return cls()
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise ConfigError(f"{path}: config file of {size / 2**20:.1f} MiB; at most "
                                  f"{MAX_FILE_BYTES >> 20} MiB")
            text = path.read_text()
            data = json.loads(text) if path.suffix == ".json" else _load_yaml(text, path)
        except RecursionError:
            raise ConfigError(f"{path}: nested too deeply (at most {MAX_DEPTH} levels)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ConfigError(f"{path}: not a valid YAML/JSON config ({msg})") from None
        _check_size(data, str(path))
        return cls.from_dict(data if data is not None else {}, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "Config":
        """A config from already parsed data; raises ConfigError naming ``source`` and the key."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: config must be a mapping with keys {', '.join(_SECTIONS)}, "
                              f"got {_kind(data)}")
        unknown = set(data) - set(_SECTIONS)
        if unknown:
            raise ConfigError(f"{source}: unknown config section(s) "
                              f"{', '.join(sorted(map(str, unknown)))}; expected {', '.join(_SECTIONS)}")
        model = _section(data.get("Model"), f"{source}: Model")
        _check_layer(model, f"{source}: Model")
        by_type = {str(k): _section(v, f"{source}: LayerType {k}")
                   for k, v in _section(data.get("LayerType"), f"{source}: LayerType").items()}
        by_name = {str(k): _section(v, f"{source}: LayerName {k}")
                   for k, v in _section(data.get("LayerName"), f"{source}: LayerName").items()}
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
            table_size=_table_size(merged.get("TableSize"), f"{where} TableSize"),
            where=where,
        )

    def unknown_layer_names(self, known: set[str]) -> list[str]:
        return sorted(set(self.layer_name) - known)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _section(value: Any, where: str) -> dict[str, Any]:
    """A section (or a layer's settings) as a dict: absent or empty is ``{}``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {_kind(value)} {_short(value)}")
    return dict(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses nesting deeper than MAX_DEPTH while composing (before
    Python's recursion limit) and aliases to more than MAX_VALUES nodes in all."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._aliased = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            self._aliased += _node_count(node, {})
            if self._aliased > MAX_VALUES:
                raise ConfigError(f"YAML aliases (*name) expand to more than {MAX_VALUES:,} values")
            return node
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(f"nested too deeply at line {mark.line + 1} (at most {MAX_DEPTH} "
                                  "levels)")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _node_count(node: yaml.Node, memo: dict[int, int]) -> int:
    """Values under ``node``, every alias in full (memoized per node: linear in the file)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = MAX_VALUES + 1  # a node inside itself (a recursive alias) counts as too many
    if isinstance(node, yaml.MappingNode):
        n = 1 + sum(_node_count(k, memo) + _node_count(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_node_count(v, memo) for v in node.value)
    else:
        n = 1
    memo[id(node)] = n = min(n, MAX_VALUES + 1)
    return n


def _load_yaml(text: str, path: Path) -> Any:
    loader = _BoundedLoader(_BARE_TYPE.sub(r'"\1"', text))
    try:
        return loader.get_single_data()
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    finally:
        loader.dispose()


def _check_size(data: Any, source: str) -> None:
    """Depth and value count of parsed data (shared objects, YAML's aliases, counted in full)."""
    memo: dict[int, int] = {}

    def count(value: Any, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise ConfigError(f"{source}: nested too deeply (at most {MAX_DEPTH} levels)")
        if not isinstance(value, (dict, list)):
            return 1
        if id(value) in memo:
            return memo[id(value)]
        children = list(value.keys()) + list(value.values()) if isinstance(value, dict) else value
        n = 1
        for child in children:
            n += count(child, depth + 1)
            if n > MAX_VALUES:
                raise ConfigError(f"{source}: more than {MAX_VALUES:,} values (YAML aliases "
                                  "counted in full)")
        memo[id(value)] = n
        return n

    count(data, 0)


def _check_layer(section: Mapping[str, Any], where: str) -> None:
    unknown = set(section) - _LAYER_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                          f"expected {', '.join(sorted(_LAYER_KEYS))}")
    prec = section.get("Precision")
    if isinstance(prec, Mapping):
        bad = set(prec) - _PRECISION_KEYS
        if bad:
            raise ConfigError(f"{where}: unknown Precision key(s) {', '.join(sorted(map(str, bad)))}; "
                              f"expected {', '.join(sorted(_PRECISION_KEYS))}")
        for key, value in prec.items():
            _parse_type(value, f"{where} Precision {key}")
    elif prec is not None:
        _parse_type(prec, f"{where} Precision")
    for key in ("ReuseFactor", "PE", "SIMD"):
        _positive(section.get(key), f"{where} {key}")
    _table_size(section.get("TableSize"), f"{where} TableSize")
    if "Strategy" in section and not isinstance(section["Strategy"], str):
        raise ConfigError(f"{where} Strategy: expected a string, got {_kind(section['Strategy'])} "
                          f"{_short(section['Strategy'])}")


def _parse_type(value: Any, where: str) -> FixedType | str:
    if isinstance(value, FixedType):
        return value
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a type such as fixed<16,6>, got {_kind(value)} "
                          f"{_short(value)}")
    try:
        t = FixedType.parse(value)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    if t.width > MAX_WIDTH:
        raise ConfigError(f"{where}: {value} is wider than the {MAX_WIDTH} bits supported for data "
                          "and weights")
    if abs(t.int_bits) > MAX_INT_BITS:
        raise ConfigError(f"{where}: {value} has {t.int_bits} integer bits; at most "
                          f"{MAX_INT_BITS} either way")
    return t


def _positive(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FACTOR:
        raise ConfigError(f"{where}: expected a positive integer up to {MAX_FACTOR}, got "
                          f"{_short(value)}")
    return value


def _table_size(value: Any, where: str) -> int | None:
    size = _positive(value, where)
    if size is not None and not (16 <= size <= MAX_TABLE_SIZE and size & (size - 1) == 0):
        raise ConfigError(f"{where}: expected a power of two from 16 to {MAX_TABLE_SIZE}, got {size}")
    return size
