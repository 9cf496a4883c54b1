"""Read a YAML file that must hold a mapping (recipes, model variants, benchmark profiles)."""
from __future__ import annotations

from pathlib import Path

from sat.errors import InputError


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
