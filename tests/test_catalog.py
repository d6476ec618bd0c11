"""What a new user meets first: every experiment answers a bad option with one clear error,
and ``rlwb.agents`` exports every agent class (the README's agents table names them)."""

import importlib
import inspect
import pathlib
import pkgutil
import subprocess
import sys

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
    for info in pkgutil.walk_packages(rlwb.agents.__path__, prefix="rlwb.agents."):
        module = importlib.import_module(info.name)
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


def test_gym_backend_finds_dm_control_ids_without_importing_shimmy_first():
    """Gymnasium registers ``dm_control/*`` only once shimmy is imported; a fresh process
    (as a user's script) must still get the gym oracle of a DMC task."""
    pytest.importorskip("shimmy")
    code = (
        "from rlwb.engine import make_engine\n"
        "print(tuple(make_engine('cartpole-swingup', 2, backend='gym', seed=0).reset().shape))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip().endswith("(2, 5)")


def test_plot_groups_a_resumed_run_with_its_fresh_twin(tmp_path):
    """A fresh run's config.yaml may say ``updates_per_step: 1`` (as the experiment wrote
    it) and its resumed twin ``1.0`` (the field's type): one configuration for rlwb plot."""
    from rlwb.plot import run_settings

    settings = []
    for name, value in (("fresh", "1"), ("resumed", "1.0")):
        run = tmp_path / name
        run.mkdir()
        (run / "config.yaml").write_text(
            f"experiment: pets_mujoco\ntrain:\n  task: InvertedPendulum-v5\n  seed: 0\n"
            f"  updates_per_step: {value}\nagent: {{}}\n"
        )
        settings.append(run_settings(run))
    assert repr(settings[0]) == repr(settings[1])  # group_runs keys on the repr
