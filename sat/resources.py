"""Where the package's data folders are: the knowledge tree, the configs and the dataset recipes.

In the repository they sit at the top level (``knowledge_tree/``, ``configs/``,
``data_shards/recipes/``); a built wheel carries copies inside the package as
``sat/_resources/<name>/`` (``setup.py`` maps them there). One lookup order for each folder:

1. its environment variable (:data:`ENV_VARS`), e.g. ``SAT_KNOWLEDGE_TREE=/my/tree``;
2. the copy inside the installed package (:func:`importlib.resources.files`);
3. the source checkout the package was imported from (an editable install or ``PYTHONPATH``).

Files the package only uses inside a checkout (benchmark samples in ``../shared``, test data) go
through :func:`checkout_root` and :func:`shared_dir`, which say ``None`` when there is none.
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

# resource name -> (folder inside the checkout, environment variable that overrides it)
RESOURCES: dict[str, tuple[str, str]] = {
    "knowledge_tree": ("knowledge_tree", "SAT_KNOWLEDGE_TREE"),
    "configs": ("configs", "SAT_CONFIGS"),
    "recipes": ("data_shards/recipes", "SAT_RECIPES"),
}
ENV_VARS = {name: env for name, (_, env) in RESOURCES.items()}
PACKAGED = "_resources"  # sat/_resources/<name> inside a wheel


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def checkout_root() -> Path | None:
    """The source checkout this package was imported from, ``None`` for an installed wheel."""
    root = _package_dir().parent
    return root if (root / "setup.cfg").is_file() and (root / "knowledge_tree").is_dir() else None


def packaged_dir(name: str) -> Path | None:
    """``sat/_resources/<name>`` of an installed wheel, ``None`` when the package has no such copy."""
    _check(name)
    ref = files("sat").joinpath(PACKAGED, name)
    if not ref.is_dir():
        return None
    return Path(str(ref))  # a wheel installed on the file system (zip imports are not supported)


def resource_dir(name: str) -> Path:
    """The folder of resource ``name`` (a key of :data:`RESOURCES`), by the lookup order above.

    Raises:
        ValueError: unknown resource name.
        FileNotFoundError: no such folder anywhere (names the variable that would set it).
    """
    _check(name)
    sub, env = RESOURCES[name]
    value = os.environ.get(env)
    if value:
        path = Path(value).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{env}={value} is not a folder")
        return path
    path = packaged_dir(name)
    if path is not None:
        return path
    root = checkout_root()
    if root is not None and (root / sub).is_dir():
        return root / sub
    raise FileNotFoundError(f"{name} folder not found: neither packaged in {_package_dir() / PACKAGED / name} "
                            f"nor in a source checkout (set {env})")


def knowledge_tree_dir() -> Path:
    """The knowledge tree's YAML folder (``$SAT_KNOWLEDGE_TREE`` overrides)."""
    return resource_dir("knowledge_tree")


def configs_dir(*parts: str) -> Path:
    """``configs/`` or a folder below it, e.g. ``configs_dir("model")`` (``$SAT_CONFIGS`` overrides)."""
    return resource_dir("configs").joinpath(*parts)


def recipes_dir() -> Path:
    """The dataset recipes' folder (``$SAT_RECIPES`` overrides)."""
    return resource_dir("recipes")


def shipped_path(value: str) -> str:
    """A config path as typed on the command line: itself when it exists, else the shipped copy.

    ``configs/experiment/phantom_nano.yaml`` names a file of the working directory when there is
    one (a checkout), else the same file inside the installed package; other values are returned
    unchanged (the caller reports a missing file).
    """
    path = Path(value).expanduser()
    parts = path.parts
    if path.is_file() or path.is_absolute() or len(parts) < 2 or parts[0] != "configs":
        return value
    try:
        shipped = configs_dir(*parts[1:])
    except FileNotFoundError:
        return value
    return str(shipped) if shipped.is_file() else value


def shared_dir() -> Path | None:
    """``$SAT_SHARED``, else the ``shared/`` folder beside the checkout; ``None`` when neither exists."""
    value = os.environ.get("SAT_SHARED")
    if value:
        return Path(value).expanduser()
    root = checkout_root()
    shared = root.parent / "shared" if root is not None else None
    return shared if shared is not None and shared.is_dir() else None


def _check(name: str) -> None:
    if name not in RESOURCES:
        raise ValueError(f"unknown resource {name!r}; known: {sorted(RESOURCES)}")
