"""What a new user meets first: every experiment answers a bad option with one clear error,
and ``rlwb.agents`` exports every agent class (the README's agents table names them)."""

import importlib
import inspect
import pathlib
import pkgutil

import pytest

import rlwb.agents
from rlwb.agent import Agent
from rlwb.cli import modules_of
from rlwb.errors import ConfigError

EXPERIMENTS = sorted(modules_of("rlwb.experiments"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_refuses_a_bad_option_with_a_config_error(name):
    module = importlib.import_module(f"rlwb.experiments.{name}")
    with pytest.raises(ConfigError, match="--bad-option"):
        module.main(["--bad-option"])


def test_rlwb_agents_exports_every_agent_class():
    classes = {}
    for info in pkgutil.iter_modules(rlwb.agents.__path__):
        module = importlib.import_module(f"rlwb.agents.{info.name}")
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            public = not cls_name.startswith("_") and cls.__module__ == module.__name__
            if public and issubclass(cls, Agent) and not inspect.isabstract(cls):
                classes[cls_name] = cls
    bases = {b for cls in classes.values() for b in cls.__mro__[1:]}  # e.g. GoalAgent
    defined = {name for name, cls in classes.items() if cls not in bases}
    assert defined >= {"DDPG", "DeepGA", "CEMMPC", "PETS", "SafeCEMMPC", "TDMPC", "GDG", "DDPGHER"}
    assert defined <= set(rlwb.agents.__all__), defined - set(rlwb.agents.__all__)


def test_readme_agents_table_names_every_experiment():
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    table = readme.split("## Agents", 1)[1].split("###", 1)[0]
    missing = [n for n in EXPERIMENTS if n != "sb3_on_engine" and f"`{n}`" not in table]
    assert not missing, f"experiments missing from the README's agents table: {missing}"
