"""The one YAML -> dataclass reader and its error naming the file and the field."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from sat.errors import InputError
from sat.yaml_io import ConfigError, check_keys, from_mapping, read_config


@dataclass
class Inner:
    size: tuple[int, ...] = (1, 1)
    name: str = "x"

    def __post_init__(self) -> None:
        if any(s < 1 for s in self.size):
            raise ValueError(f"size must be positive, got {self.size}")


@dataclass
class Outer:
    label: str
    inner: Inner = field(default_factory=Inner)
    grid: tuple[tuple[int, ...], ...] = ()
    extra: dict = field(default_factory=dict)
    maybe: tuple[str, ...] | None = None


def test_types_guide_the_conversion():
    o = from_mapping(Outer, {"label": "a", "inner": {"size": [2, 3]}, "grid": [[1, 2], [3]],
                             "extra": {"k": [1, 2]}, "maybe": ["p"]}, "f.yaml")
    assert o.inner == Inner((2, 3)) and o.grid == ((1, 2), (3,)) and o.maybe == ("p",)
    assert o.extra == {"k": [1, 2]}  # mappings are copied as they are


@pytest.mark.parametrize("raw,message", [
    ({"label": "a", "colour": 1}, "f.yaml: unknown field(s) ['colour']; expected some of"),
    ({}, "f.yaml: missing field(s) ['label']"),
    ({"label": "a", "inner": {"sise": [1]}}, "f.yaml: inner: unknown field(s) ['sise']"),
    ({"label": "a", "inner": {"size": [0]}}, "f.yaml: inner: size must be positive, got (0,)"),
    ({"label": "a", "inner": [1]}, "f.yaml: inner: expected a mapping, got list"),
    ([1, 2], "f.yaml: expected a mapping, got list"),
])
def test_errors_name_the_file_and_the_field(raw, message):
    with pytest.raises(ConfigError) as info:
        from_mapping(Outer, raw, "f.yaml")
    assert str(info.value).startswith(message), str(info.value)
    assert isinstance(info.value, InputError) and info.value.source == "f.yaml"  # one line, exit code 2


def test_read_config_names_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("label: a\ninner: {size: [4]}\n")
    assert read_config(path, Outer, "test config").inner.size == (4,)
    path.write_text("label: a\ninner: {size: [-1]}\n")
    with pytest.raises(ConfigError, match=f"{path}: inner: size must be positive") as info:
        read_config(path, Outer, "test config")
    assert info.value.field == "inner"


def test_check_keys_for_hand_written_readers():
    assert check_keys({"a": 1}, ("a", "b"), "s", required=("a",)) == {"a": 1}
    with pytest.raises(ConfigError, match=r"s: part: missing field\(s\) \['b'\]"):
        check_keys({"a": 1}, ("a", "b"), "s", "part", required=("b",))


def test_every_shipped_config_reads():
    from sat.bench.config import load_profile
    from sat.model.config import load_model_config, model_variants

    assert all(load_model_config(v).to_dict() for v in model_variants())
    for kind in ("phantom", "speed", "real"):
        assert load_profile(kind, "quick").name


def test_a_model_variant_error_names_file_and_field(tmp_path):
    from sat.model.config import load_model_config

    path = tmp_path / "v.yaml"
    path.write_text("head: {layrs: 2}\n")
    with pytest.raises(ConfigError, match=rf"{path}: head: unknown field\(s\) \['layrs'\]"):
        load_model_config(path)
