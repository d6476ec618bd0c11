"""The README's agent template is a working agent: it trains, differs from DDPG where it
says it does, and resumes exactly."""

from __future__ import annotations

import dataclasses
import re
import sys
import types

import torch

from rlwb import checkpoint as ckpt
from rlwb.agents import DDPG
from rlwb.train import TrainConfig, train
from tests.helpers import ROOT
from tests.test_runtime import assert_same


def _template() -> types.ModuleType:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Writing an agent") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    module = types.ModuleType("readme_agent")
    sys.modules[module.__name__] = module  # dataclasses and class paths look modules up
    exec(compile(code, "README.md (agent template)", "exec"), module.__dict__)  # noqa: S102
    return module


def test_the_readme_agent_template_trains_and_resumes(tmp_path):
    template = _template()
    cls, config_cls = template.SmoothedDDPG, template.SmoothedDDPGConfig
    assert issubclass(cls, DDPG) and cls.bootstrap_target is not DDPG.bootstrap_target
    config = config_cls(hidden=(16, 16), batch_size=32, buffer_size=5_000)
    cfg = TrainConfig(
        task="Pendulum-v1", backend="torch", num_envs=2, total_steps=400, learning_starts=100,
        eval_every=0, checkpoint_every=200, eval_episodes=1, run_dir=str(tmp_path),
        run_name="full", progress=False,
    )  # fmt: skip
    full = train(cls, config, cfg)
    halfway = next(
        p for p in ckpt.CheckpointManager(full.run_dir / "checkpoints").existing()
        if ckpt.step_of(p) < full.env_steps
    )  # fmt: skip
    resumed = train(cls, config, dataclasses.replace(cfg, run_name="resumed"), resume=halfway)
    a, b = ckpt.load(full.checkpoint), ckpt.load(resumed.checkpoint)
    assert_same(a["agent"], b["agent"], "agent")

    # the smoothed target is not DDPG's: same batch, same networks, other targets
    agent = cls(config, _spec(), torch.device("cpu"))
    batch = {
        "next_obs": torch.randn(8, 3), "reward": torch.zeros(8), "done": torch.zeros(8),
    }  # fmt: skip
    with torch.no_grad():
        smoothed = agent.bootstrap_target(batch)
        plain = DDPG.bootstrap_target(agent, batch)
    assert smoothed.shape == plain.shape and not torch.allclose(smoothed, plain)


def _spec():
    from rlwb.engine import make_engine

    engine = make_engine("Pendulum-v1", 2, backend="torch")
    spec = engine.spec
    engine.close()
    return spec
