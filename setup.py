"""Build step that puts the repository's data folders inside the wheel.

``knowledge_tree/``, ``configs/`` and ``data_shards/recipes/`` stay at the top level of the
repository; a (non-editable) build copies them to ``sat/_resources/<name>/`` so that an installed
package finds them through :mod:`sat.resources`. Editable installs read the checkout directly.
Everything else is declared in ``setup.cfg``.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# folder in the repository -> folder under sat/_resources (the keys of sat.resources.RESOURCES)
RESOURCES = {"knowledge_tree": "knowledge_tree", "configs": "configs", "data_shards/recipes": "recipes"}
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class BuildWithResources(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "sat" / "_resources"
        for src, name in RESOURCES.items():
            dest = target / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(ROOT / src, dest, ignore=SKIP)


setup(cmdclass={"build_py": BuildWithResources})
