"""``rlwb export``: every agent with a policy network writes ONNX and TorchScript files that
compute its actions; planning agents are refused in one line."""

from __future__ import annotations

import io
import pathlib

import pytest
import torch

from rlwb import checkpoint as ckpt
from rlwb import cli
from rlwb import export as rlwb_export
from rlwb.agent import Agent, PolicyNetwork
from rlwb.agents.ddpg import DDPG, DDPGConfig
from rlwb.config import class_path, to_plain
from rlwb.errors import ConfigError
from rlwb.evaluate import policy_entry, spec_to_dict
from rlwb.export import NotExportable, export_policy, load_agent
from rlwb.train import TrainConfig, train
from tests.agent_setups import agent_classes, build, setup_of

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")

AGENTS = agent_classes()


def _save_policy(agent: Agent, path: pathlib.Path) -> pathlib.Path:
    """A ``policy.pt`` of an agent built directly (what a run's ``policy.pt`` holds)."""
    setup = setup_of(type(agent))
    payload = {
        "agent_class": class_path(type(agent)),
        "agent_config_class": class_path(type(agent.config)),
        "agent_config": to_plain(agent.config),
        "train_config": {"task": setup.task, "task_kwargs": setup.task_kwargs},
        "backend": setup.backend,
        "spec": spec_to_dict(agent.spec),
        **policy_entry(agent),
    }
    return ckpt.save(path, payload, kind=ckpt.POLICY_FORMAT)


def _run_onnx(path: pathlib.Path, obs: torch.Tensor) -> torch.Tensor:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(["action"], {"obs": obs.numpy()})[0])


def _run_torchscript(path: pathlib.Path, obs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.jit.load(str(path))(obs)


RUNNERS = {".onnx": _run_onnx, ".pt": _run_torchscript}


def _real_observations(agent_cls: type[Agent], members: int = 5) -> torch.Tensor:
    """Observations of the agent's task after a few random steps (other batch sizes than
    the export's check uses)."""
    engine = setup_of(agent_cls).engine(members, seed=7)
    obs = [engine.reset(seed=7)]
    gen = torch.Generator().manual_seed(7)
    low, high = engine.spec.action_low, engine.spec.action_high
    for _ in range(3):
        action = low + (high - low) * torch.rand(members, engine.spec.action_dim, generator=gen)
        obs.append(engine.step(action)[0])
    engine.close()
    return torch.cat(obs).float()


def test_a_trained_ddpg_run_exports_what_it_acts(tmp_path, capsys):
    """Batch norm in the actor (eval-mode statistics must go into the file) and a run
    folder as input; the files are read back here, independently of the export's check."""
    cfg = TrainConfig(
        task="Pendulum-v1", backend="torch", total_steps=60, learning_starts=20, eval_every=0,
        checkpoint_every=0, eval_episodes=1, eval_horizon=5, run_dir=str(tmp_path),
        run_name="r", progress=False,
    )  # fmt: skip
    config = DDPGConfig(hidden=(16, 16), batch_size=8, buffer_size=1000, batch_norm=True)
    run = train(DDPG, config, cfg).run_dir
    agent, _ = load_agent(run)
    obs = _real_observations(DDPG)
    expected = agent.act(obs)
    assert float(expected.abs().max()) > 0
    for suffix in (".onnx", ".pt"):
        out = tmp_path / f"policy{suffix}"
        assert cli.main(["export", str(run), "-o", str(out)]) == 0
        printed = capsys.readouterr().out
        assert f"wrote {out}" in printed and "max |" in printed
        torch.testing.assert_close(RUNNERS[suffix](out, obs), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(RUNNERS[suffix](out, obs[:1]), expected[:1])


@pytest.mark.parametrize("agent_cls", AGENTS, ids=lambda cls: cls.__name__)
def test_every_agent_exports_or_says_why_not(agent_cls, tmp_path, capsys):
    engine = setup_of(agent_cls).engine()
    agent = build(agent_cls, engine)
    engine.close()
    source = _save_policy(agent, tmp_path / "policy.pt")
    if agent.policy_network() is None:
        code = cli.main(["export", str(source), "-o", str(tmp_path / "x.onnx")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1
        assert f"{agent_cls.__name__} has no policy network to export" in err and "plan" in err
        assert not (tmp_path / "x.onnx").exists()
        return
    loaded, _ = load_agent(source)
    net = loaded.policy_network()
    obs = _real_observations(agent_cls)
    with torch.no_grad():
        expected = net.module.eval()(obs)
    if net.differs_from_act is None:
        torch.testing.assert_close(expected, loaded.act(obs), rtol=0, atol=0)
    for suffix in (".onnx", ".pt"):
        result = export_policy(source, tmp_path / f"out{suffix}")
        assert result.max_abs_diff <= result.tolerance and (result.note is None) == (
            net.differs_from_act is None
        )
        got = RUNNERS[suffix](result.path, obs)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_an_export_that_disagrees_with_torch_or_act_fails_and_writes_nothing(tmp_path, monkeypatch):
    agent = DDPG(DDPGConfig(hidden=(8,)), setup_of(DDPG).engine(1).spec, "cpu")
    source = _save_policy(agent, tmp_path / "policy.pt")

    def off_by_a_bit(data):
        def run(obs):
            return torch.jit.load(io.BytesIO(data))(obs) + 1e-2

        return run

    monkeypatch.setattr(rlwb_export, "_torchscript_runner", off_by_a_bit)
    with pytest.raises(NotExportable, match="differs from torch"):
        export_policy(source, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()
    monkeypatch.undo()

    def unscaled(self):  # a hook that forgot part of act (here: the action scaling)
        return PolicyNetwork(self.actor)

    monkeypatch.setattr(DDPG, "policy_network", unscaled)
    with pytest.raises(NotExportable, match=r"policy_network\(\) differs from agent.act"):
        export_policy(source, tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()
    with pytest.raises(ConfigError, match=r"\.onnx .* or \.pt"):
        export_policy(source, tmp_path / "policy.txt")
    with pytest.raises(ConfigError, match="the saved policy itself"):
        export_policy(source, source)
