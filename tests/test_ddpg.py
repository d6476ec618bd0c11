"""DDPG: configuration errors, replay and noise mechanics, exact checkpoint round trips, and
learning to thresholds an untrained policy cannot reach (Pendulum-v1, InvertedPendulum-v5)."""

from __future__ import annotations

import copy
import io
import itertools
import re
import subprocess
import sys

import pytest
import torch

from rlwb import checkpoint as ckpt
from rlwb import make_engine
from rlwb.agents import DDPG, DDPGConfig
from rlwb.engine.base import EngineSpec
from rlwb.errors import ConfigError
from rlwb.evaluate import run_evaluation
from rlwb.noise import OrnsteinUhlenbeckNoise
from rlwb.replay import ReplayBuffer
from rlwb.train import TrainConfig, train
from tests.helpers import toy_spec

# Small networks so the learning tests fit the suite's time budget on 2 loaded cores.
FAST = dict(buffer_size=50_000)  # the default (64-64, batch 128) with a smaller buffer


def _spec(obs_dim: int = 3, act_dim: int = 2, num_envs: int = 4) -> EngineSpec:
    return toy_spec(obs_dim, act_dim, num_envs, max_episode_steps=100)


def _fill(agent: DDPG, n: int = 300, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    spec = agent.spec
    for _ in range(n // spec.num_envs):
        b = spec.num_envs
        obs = torch.randn(b, *spec.observation_shape, generator=g)
        act = 4 * torch.rand(b, spec.action_dim, generator=g) - 2
        agent.observe(
            obs,
            act,
            torch.randn(b, generator=g),
            torch.randn(b, *spec.observation_shape, generator=g),
            torch.rand(b, generator=g) < 0.1,
            torch.zeros(b, dtype=torch.bool),
        )


# ---------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(tau=-0.1), "tau"),
        (dict(tau=0.0), "tau"),
        (dict(batch_size=512, buffer_size=100), "batch_size"),
        (dict(gamma=1.5), "gamma"),
        (dict(actor_lr=0.0), "actor_lr"),
        (dict(noise="pink"), "noise"),
        (dict(hidden=()), "hidden"),
        (dict(critic_action_layer=2), "critic_action_layer"),
        (dict(critic_l2=-1.0), "critic_l2"),
    ],
)
def test_bad_config_is_a_clear_error(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DDPGConfig(**overrides)


def test_presets_match_the_paper_and_sb3() -> None:
    paper = DDPGConfig.paper()
    assert (paper.actor_lr, paper.critic_lr, paper.critic_l2, paper.tau) == (1e-4, 1e-3, 1e-2, 1e-3)
    assert (paper.hidden, paper.batch_size, paper.noise, paper.noise_sigma) == (
        (400, 300),
        64,
        "ou",
        0.2,
    )
    assert paper.critic_action_layer == 1 and paper.batch_norm
    modern = DDPGConfig.modern()
    assert (modern.batch_size, modern.tau, modern.noise, modern.noise_sigma) == (
        256,
        0.005,
        "gaussian",
        0.1,
    )
    assert modern.actor_lr == modern.critic_lr == 1e-3 and modern.critic_l2 == 0.0
    with pytest.raises(ConfigError, match="tau"):
        DDPGConfig.paper(tau=2.0)


def test_paper_preset_networks_and_updates() -> None:
    """Final layers in U[-3e-3, 3e-3], hidden layers within 1/sqrt(fan_in), action at the
    critic's second layer, batch norm; updates run and give finite losses."""
    torch.manual_seed(0)
    agent = DDPG(DDPGConfig.paper(hidden=(40, 30), buffer_size=1000), _spec(), "cpu")
    linears = [m for m in agent.critic.modules() if isinstance(m, torch.nn.Linear)]
    assert linears[0].in_features == 3 and linears[1].in_features == 40 + 2
    assert linears[-1].weight.abs().max() <= 3e-3
    assert linears[1].weight.abs().max() <= 1 / 42**0.5
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in agent.actor.modules())
    _fill(agent)
    losses = agent.update(3)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in losses.values())
    action = agent.act(torch.randn(4, 3), explore=True)
    assert action.shape == (4, 2) and bool((action.abs() <= 2.0).all())


def test_paper_preset_targets_use_the_online_batch_norm_statistics() -> None:
    """Running statistics are copied into the targets at each target update (tau = 0.001
    would leave the targets' input normalisation ~1,000 updates behind)."""
    torch.manual_seed(0)
    agent = DDPG(DDPGConfig.paper(hidden=(40, 30), buffer_size=1000), _spec(), "cpu")
    _fill(agent)
    agent.replay.data["obs"].add_(5.0)  # inputs far from the initial running mean of 0
    agent.update(20)
    online = dict(agent.actor.named_buffers()) | dict(agent.critic.named_buffers())
    target = dict(agent.actor_target.named_buffers()) | dict(agent.critic_target.named_buffers())
    assert float(agent.actor.net[0].running_mean.mean()) > 1.0
    for name, value in online.items():
        assert torch.equal(target[name], value), name
    weight = agent.actor.net[0].weight
    assert not torch.equal(agent.actor_target.net[0].weight, weight)  # weights stay soft


# ---------------------------------------------------------------------- replay and noise
def test_replay_wraps_and_restores_exactly() -> None:
    gen = torch.Generator().manual_seed(0)
    buf = ReplayBuffer(5, {"x": ((2,), torch.float32), "d": ((), torch.bool)}, generator=gen)
    buf.add(x=torch.arange(6.0).reshape(3, 2), d=torch.tensor([True, False, True]))
    buf.add(x=torch.arange(6.0, 12.0).reshape(3, 2), d=torch.tensor([False, False, True]))
    assert len(buf) == 5 and buf.pos == 1
    assert buf.data["x"][:, 0].tolist() == [10.0, 2.0, 4.0, 6.0, 8.0]  # row 0 overwritten
    batch = buf.sample(7, num_batches=3)
    assert batch["x"].shape == (3, 7, 2) and batch["d"].shape == (3, 7)
    saved = buf.state_dict()
    gen_state = gen.get_state()
    expected = buf.sample(4)
    other = ReplayBuffer(5, {"x": ((2,), torch.float32), "d": ((), torch.bool)}, generator=gen)
    other.load_state_dict(saved)
    gen.set_state(gen_state)
    assert torch.equal(other.sample(4)["x"], expected["x"])
    with pytest.raises(ValueError, match="fields"):
        buf.add(x=torch.zeros(1, 2))


def test_ou_noise_resets_only_finished_members() -> None:
    noise = OrnsteinUhlenbeckNoise(3, 2, sigma=0.2, generator=torch.Generator().manual_seed(0))
    for _ in range(5):
        noise.sample()
    before = noise.state.clone()
    noise.reset(torch.tensor([False, True, False]))
    assert torch.equal(noise.state[1], torch.zeros(2))
    assert torch.equal(noise.state[[0, 2]], before[[0, 2]])


# ---------------------------------------------------------------------- the update
def test_update_is_the_papers_update_written_out() -> None:
    """``update(STEPS)`` equals Lillicrap et al.'s steps written out with plain modules and
    plain (for-loop) Adam on the batches the agent drew: critic MSE onto
    ``r + gamma (1 - d) Q'(s', mu'(s'))`` (L2 on the critic's weights), actor ascent on
    ``Q(s, mu(s))`` through the updated critic, then soft targets with rate tau. Several
    steps, because Adam's first step moves each weight by about lr whatever its gradient."""
    steps = 4
    cfg = DDPGConfig(
        hidden=(16, 12),
        batch_size=128,
        buffer_size=1000,
        critic_l2=1e-2,
        gamma=0.9,
        tau=0.1,
        seed=0,
    )
    agent = DDPG(cfg, _spec(obs_dim=3, act_dim=2), "cpu")
    _fill(agent)
    nets = (agent.actor, agent.critic, agent.actor_target, agent.critic_target)
    mu, q, mu_t, q_t = (copy.deepcopy(m) for m in nets)
    drawn = agent.generator.get_state()
    agent.update(steps)
    agent.generator.set_state(drawn)
    batches = agent.replay.sample(cfg.batch_size, steps)
    assert 0 < batches["done"].sum() < batches["done"].numel()  # terminal rows and others

    weights = [p for p in q.parameters() if p.ndim > 1]
    biases = [p for p in q.parameters() if p.ndim == 1]
    critic_opt = torch.optim.Adam(
        [{"params": weights, "weight_decay": cfg.critic_l2}, {"params": biases}],
        lr=cfg.critic_lr,
        foreach=False,
    )
    actor_opt = torch.optim.Adam(mu.parameters(), lr=cfg.actor_lr, foreach=False)
    for i in range(steps):
        s, a, r, s2, d = (batches[k][i] for k in ("obs", "action", "reward", "next_obs", "done"))
        with torch.no_grad():
            y = r + cfg.gamma * (1 - d) * q_t(s2, mu_t(s2))
        critic_opt.zero_grad()
        ((q(s, a) - y) ** 2).mean().backward()
        critic_opt.step()
        actor_opt.zero_grad()
        (-q(s, mu(s)).mean()).backward()
        actor_opt.step()
        with torch.no_grad():
            online = itertools.chain(mu.parameters(), q.parameters())
            targets = itertools.chain(mu_t.parameters(), q_t.parameters())
            for target, source in zip(targets, online, strict=True):
                target.copy_((1 - cfg.tau) * target + cfg.tau * source)

    for mine, paper in zip(nets, (mu, q, mu_t, q_t), strict=True):
        for (name, got), want in zip(
            mine.state_dict().items(), paper.state_dict().values(), strict=True
        ):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)


# ---------------------------------------------------------------------- checkpoints
def test_state_dict_round_trip_is_exact() -> None:
    """A fresh agent loaded from a serialized state acts and updates identically."""
    cfg = DDPGConfig(**{**FAST, "noise": "ou", "batch_size": 32, "buffer_size": 1000})
    torch.manual_seed(0)
    a = DDPG(cfg, _spec(), "cpu")
    _fill(a)
    a.update(3)
    obs = torch.randn(4, 3)
    a.act(obs, explore=True)
    blob = io.BytesIO()
    torch.save(a.state_dict(), blob)
    blob.seek(0)
    torch.manual_seed(1)
    b = DDPG(cfg, _spec(), "cpu")
    assert not torch.equal(a.act(obs), b.act(obs))
    b.load_state_dict(torch.load(blob, weights_only=True))
    assert torch.equal(a.act(obs, explore=True), b.act(obs, explore=True))
    la, lb = a.update(2), b.update(2)
    assert torch.equal(la["critic_loss"], lb["critic_loss"])
    for pa, pb in zip(a.critic_target.parameters(), b.critic_target.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert torch.equal(a.act(obs), b.act(obs))
    policy = DDPG(cfg, _spec(), "cpu")
    policy.load_policy_state_dict(a.policy_state_dict())
    assert torch.equal(policy.act(obs), a.act(obs))


def test_resumed_run_matches_uninterrupted_run(tmp_path) -> None:
    """Through the runner, with 2 members and OU noise: resuming from the mid-run checkpoint
    ends with exactly the networks and replay of the run that was never stopped."""
    kw = dict(num_envs=2, checkpoint_every=600, noise="ou", batch_size=32)
    full = _train("Pendulum-v1", "torch", 1_200, 300, tmp_path, **kw)
    final = ckpt.load(full.checkpoint)["agent"]
    middle = full.checkpoint.parent / ckpt.checkpoint_name(600)
    resumed = _train("Pendulum-v1", "torch", 1_200, 300, tmp_path, resume=middle, **kw)
    again = ckpt.load(resumed.checkpoint)["agent"]
    assert again["updates"] == final["updates"] > 800
    for key in ("actor", "critic_target"):
        for name, value in final[key].items():
            assert torch.equal(again[key][name], value), (key, name)
    assert torch.equal(again["replay"]["data"]["obs"], final["replay"]["data"]["obs"])
    assert torch.equal(again["noise"]["state"], final["noise"]["state"])


# ---------------------------------------------------------------------- learning
def _untrained_return(task: str, backend: str) -> float:
    engine = make_engine(task, 10, backend=backend, seed=0)
    torch.manual_seed(0)
    agent = DDPG(DDPGConfig(**FAST), engine.spec, "cpu")
    returns, _ = run_evaluation(agent, engine, seed=10_000)
    return float(returns.mean())


def _train(
    task: str, backend: str, steps: int, starts: int, tmp_path, resume=None, **agent
) -> object:
    cfg = TrainConfig(
        task=task,
        backend=backend,
        num_envs=agent.pop("num_envs", 1),
        total_steps=steps,
        learning_starts=starts,
        eval_every=0,
        checkpoint_every=agent.pop("checkpoint_every", 0),
        log_every=steps,
        run_dir=str(tmp_path),
        progress=False,
    )
    return train(DDPG, DDPGConfig(**{**FAST, **agent}), cfg, resume=resume)


def _cli_eval(checkpoint) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "rlwb.cli", "eval", str(checkpoint)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return float(re.search(r"(-?\d+\.\d+) ±", out).group(1))


@pytest.mark.slow
def test_learns_pendulum_and_cli_eval_reproduces_it(tmp_path) -> None:
    assert _untrained_return("Pendulum-v1", "torch") < -250
    result = _train("Pendulum-v1", "torch", 6_000, 1_000, tmp_path, gamma=0.98)
    assert result.eval_mean >= -250, result
    assert _cli_eval(result.checkpoint) == pytest.approx(result.eval_mean, abs=1e-3)


@pytest.mark.slow
def test_learns_inverted_pendulum(tmp_path) -> None:
    assert _untrained_return("InvertedPendulum-v5", "mujoco") < 900
    # DDPG on InvertedPendulum jumps from ~50 to 1000 somewhere past 12k steps and can fall
    # back between evaluations; 20k steps reach 1000 for seeds 0 and 1 here (measured).
    result = _train("InvertedPendulum-v5", "mujoco", 20_000, 1_000, tmp_path)
    assert result.eval_mean >= 900, result


@pytest.mark.slow
def test_paper_preset_experiment_learns_inverted_pendulum(tmp_path) -> None:
    """``rlwb train ddpg_paper`` (``DDPGConfig.paper()``: batch norm, L2, OU, batch 64,
    tau 0.001) on InvertedPendulum-v5 for 6,400 steps, seed 3. Untrained, the preset scores
    20.5-25.7 (seeds 0-2); the budget was chosen on seeds 0-2, which scored 64, 61 and 56 at
    6,000-6,400 steps (their 8,000-step scores 42, 64, 107 show how noisy the climb is);
    seed 3 scored 86.8 (threshold 40, 2.2x margin)."""
    from rlwb.experiments import ddpg_paper

    engine = make_engine("InvertedPendulum-v5", 10, backend="mujoco", seed=0)
    torch.manual_seed(3)
    untrained = DDPG(DDPGConfig.paper(buffer_size=1_000), engine.spec, "cpu")
    assert float(run_evaluation(untrained, engine, seed=10_000)[0].mean()) < 40
    result = ddpg_paper.main(
        ["--train.task", "InvertedPendulum-v5", "--train.seed", "3", "--train.total-steps",
         "6400", "--train.eval-every", "0", "--train.checkpoint-every", "0", "--train.run-dir",
         str(tmp_path), "--train.no-progress", "--agent.buffer-size", "6400"]
    )  # fmt: skip
    assert result.eval_mean >= 40, result
