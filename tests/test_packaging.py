"""Packaging: every package folder is installed under the rlwb namespace."""

from __future__ import annotations

import pathlib

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed_in_pyproject():
    setuptools = _pyproject()["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools["package-dir"]
    listed = set(setuptools["packages"])
    expected = set()
    for package, folder in package_dir.items():
        root = ROOT / folder
        assert root.is_dir(), f"package-dir maps {package} to missing folder {folder}"
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root).parts
            if "__pycache__" in relative:
                continue
            expected.add(".".join((package, *relative)))
    missing = sorted(expected - listed)
    stale = sorted(listed - expected)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert not stale, f"listed in pyproject.toml but not a package folder: {stale}"


def test_top_level_folders_map_onto_the_rlwb_namespace():
    package_dir = _pyproject()["tool"]["setuptools"]["package-dir"]
    assert package_dir == {
        "rlwb": "rlwb",
        "rlwb.envs": "envs",
        "rlwb.agents": "agents",
        "rlwb.planners": "planners",
        "rlwb.experiments": "experiments",
    }


def test_console_script_and_runtime_dependencies():
    project = _pyproject()["project"]
    assert project["scripts"]["rlwb"] == "rlwb.cli:main"
    names = {
        dep.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
        for dep in project["dependencies"]
    }
    # imported by the runtime at module level: rlwb.config (yaml), rlwb.cli (tyro), logger (rich)
    assert {"torch", "pyyaml", "tyro", "rich", "tensorboard", "imageio", "matplotlib"} <= names
