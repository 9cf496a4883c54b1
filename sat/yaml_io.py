"""YAML configuration files: a mapping read from a file, and the one way such a mapping becomes
a typed dataclass (:func:`from_mapping`, :func:`read_config`), with one error type that names the
file and the field (:class:`ConfigError`). Model variants, recipes, benchmark profiles and the
knowledge tree are read through it."""
from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sat.errors import InputError

T = TypeVar("T")


def read_yaml_mapping(path: str | Path, what: str) -> dict:
    """The mapping in ``path`` (``{}`` for an empty file).

    Args:
        path: the YAML file.
        what: what the file is, for the message ("recipe", "model variant", ...).

    Raises:
        InputError: (a ``ValueError``) the text is not valid YAML or not a mapping; one line
            naming the file.
    """
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{what} {path}: invalid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{what} {path}: expected a YAML mapping, got {type(raw).__name__}")
    return raw


class ConfigError(InputError):
    """A configuration whose content does not fit its dataclass.

    The message names the source (a file path, or what the mapping is) and the dotted field:
    ``configs/model/x.yaml: head.layers: ...``. ``source``, ``field`` and ``problem`` are kept.
    """

    def __init__(self, source: str | Path, field: str, problem: str) -> None:
        self.source, self.field, self.problem = str(source), field, problem
        super().__init__(f"{self.source}: {field}: {problem}" if field else f"{self.source}: {problem}")


def check_keys(raw: Any, known: Iterable[str], source: str | Path, field: str = "",
               required: Iterable[str] = ()) -> dict:
    """``raw`` as a dict, after checking it is a mapping with only ``known`` and all ``required`` keys.

    Raises:
        ConfigError: not a mapping, unknown keys or missing keys (naming them, ``source`` and ``field``).
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(source, field, f"expected a mapping, got {type(raw).__name__}")
    known = set(known)
    unknown = sorted(set(raw) - known, key=str)
    if unknown:
        raise ConfigError(source, field, f"unknown field(s) {unknown}; expected some of {sorted(known)}")
    missing = sorted(set(required) - set(raw))
    if missing:
        raise ConfigError(source, field, f"missing field(s) {missing}")
    return dict(raw)


def from_mapping(cls: type[T], raw: Any, source: str | Path, field: str = "") -> T:
    """Build the dataclass ``cls`` from a parsed YAML mapping, guided by its field types.

    A field typed as a dataclass takes a mapping, read the same way; a field typed as a tuple
    takes a list (lists inside it become tuples too); a mapping-typed field is copied as it is;
    anything else passes unchanged for ``cls`` to check.

    Args:
        cls: the dataclass. raw: the mapping. source: the file or what the mapping is, for messages.
        field: the dotted path of ``raw`` inside its file ("" at the top).

    Raises:
        ConfigError: not a mapping, unknown or missing fields, or ``cls`` rejecting a value (its
            own message, prefixed with the source and field).
    """
    specs = _field_specs(cls)
    required = [name for name, (_, needed) in specs.items() if needed]
    values = check_keys(raw, specs, source, field, required)
    for name, value in values.items():
        shape = specs[name][0]
        where = f"{field}.{name}" if field else name
        if dataclasses.is_dataclass(shape) and value is not None and not isinstance(value, shape):
            values[name] = from_mapping(shape, value, source, where)
        elif shape is tuple and isinstance(value, list):
            values[name] = _tuples(value)
        elif shape is dict and isinstance(value, Mapping):
            values[name] = dict(value)
    try:
        return cls(**values)
    except ConfigError as exc:  # from a nested from_mapping in cls's own checks: this file, its path
        raise ConfigError(source, ".".join(p for p in (field, exc.field) if p), exc.problem) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(source, field, str(exc)) from None


def read_config(path: str | Path, cls: type[T], what: str) -> T:
    """The dataclass ``cls`` in the YAML file ``path`` (:func:`read_yaml_mapping`, :func:`from_mapping`).

    Raises:
        InputError: invalid YAML or not a mapping. ConfigError: a field that does not fit.
    """
    return from_mapping(cls, read_yaml_mapping(path, what), path)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


@functools.lru_cache(maxsize=None)
def _field_specs(cls: type) -> dict[str, tuple[Any, bool]]:
    """Field name -> (shape, required): shape is a dataclass, ``tuple``, ``dict`` or ``None``."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if f.init:
            needed = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            out[f.name] = (_shape(hints.get(f.name)), needed)
    return out


def _shape(hint: Any) -> Any:
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for h in options:
        if dataclasses.is_dataclass(h):
            return h
        origin = typing.get_origin(h) or h
        if origin is tuple:
            return tuple
        if origin in (dict, Mapping):
            return dict
    return None
