"""TD-MPC: the authors' defaults, TOLD's shapes and initialisation, the planner conventions,
prioritized window updates, exact checkpoints (and resume through the runner), CEM in place
of MPPI, and learning Pendulum-v1 to a return an untrained agent cannot reach."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest
import torch
from torch import nn

from rlwb import checkpoint as ckpt
from rlwb import make_engine
from rlwb.agents.tdmpc.agent import TDMPC, TDMPCConfig, linear_schedule
from rlwb.errors import ConfigError
from rlwb.evaluate import evaluation_rng, run_evaluation
from rlwb.train import TrainConfig, train
from tests.helpers import run_cli, toy_spec

# The smallest setting that still plans and learns: used where behaviour, not skill, counts.
TINY = dict(
    iterations=2, samples=32, elites=4, batch_size=16, buffer_size=2_000,
    latent_dim=8, mlp_dim=32, enc_dim=16, horizon=3, schedule_steps=100,
)  # fmt: skip


def _fill(agent: TDMPC, steps: int = 40, seed: int = 0) -> None:
    """Random transitions; every member ends an episode every 10 steps."""
    g = torch.Generator().manual_seed(seed)
    spec = agent.spec
    b, o = spec.num_envs, spec.observation_shape
    for t in range(steps):
        agent.observe(
            torch.randn(b, *o, generator=g),
            4 * torch.rand(b, spec.action_dim, generator=g) - 2,
            torch.randn(b, generator=g),
            torch.randn(b, *o, generator=g),
            torch.zeros(b, dtype=torch.bool),
            torch.full((b,), t % 10 == 9),
        )


# ---------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(elites=600), "elites"),
        (dict(planner="icem"), "planner"),
        (dict(horizon=0), "horizon"),
        (dict(horizon_start=6), "horizon_start"),
        (dict(rho=0.0), "rho"),
        (dict(tau=0.0), "tau"),
        (dict(min_std=3.0), "min_std"),
        (dict(mixture=1.5), "mixture"),
        (dict(value_coef=-1.0), "value_coef"),
    ],
)
def test_bad_config_is_a_clear_error(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TDMPCConfig(**overrides)


def test_tasks_it_cannot_run_are_clear_errors() -> None:
    matrices = dataclasses.replace(toy_spec(), observation_shape=(3, 64))  # neither kind
    with pytest.raises(ConfigError, match="flat observations"):
        TDMPC(TDMPCConfig(**TINY), matrices, "cpu")
    unbounded = dataclasses.replace(toy_spec(), action_low=torch.full((2,), -torch.inf))
    with pytest.raises(ConfigError, match="finite action bounds"):
        TDMPC(TDMPCConfig(**TINY), unbounded, "cpu")


def test_defaults_are_the_authors() -> None:
    """cfgs/default.yaml of nicklashansen/tdmpc (state-based DMControl)."""
    c = TDMPCConfig.official()
    planning = (c.iterations, c.samples, c.elites, c.mixture, c.min_std, c.temperature)
    assert planning == (6, 512, 64, 0.05, 0.05, 0.5)
    assert (c.momentum, c.init_std, c.horizon, c.std_start, c.schedule_steps) == (
        0.1, 2.0, 5, 0.5, 25_000,
    )  # fmt: skip
    learning = (c.batch_size, c.buffer_size, c.lr, c.rho, c.gamma, c.grad_clip)
    assert learning == (512, 1_000_000, 1e-3, 0.5, 0.99, 10.0)
    coefs = (c.consistency_coef, c.reward_coef, c.value_coef, c.tau, c.target_every)
    assert coefs == (2.0, 0.5, 0.1, 0.01, 2)
    assert (c.per_alpha, c.per_beta, c.latent_dim, c.mlp_dim, c.enc_dim) == (0.6, 0.4, 50, 512, 256)


def test_told_architecture_and_initialisation() -> None:
    agent = TDMPC(TDMPCConfig.official(seed=0), toy_spec(obs_dim=17, act_dim=6), "cpu")
    m = agent.model
    assert [type(x) for x in m.q1[:3]] == [nn.Linear, nn.LayerNorm, nn.Tanh]
    assert isinstance(m.dynamics[1], nn.ELU) and m.dynamics[0].in_features == 50 + 6
    assert m.encoder[0].out_features == 256 and m.dynamics[0].out_features == 512
    for head in (m.reward_head, m.q1, m.q2):
        assert not head[-1].weight.any() and not head[-1].bias.any()
    w = m.dynamics[2].weight  # orthogonal: rows orthonormal
    assert torch.allclose(w @ w.T, torch.eye(512), atol=1e-4)
    # The planner gets the authors' conventions: 25 policy trajectories, exp(0.5 (v - max)).
    p = agent.planner.config
    assert (p.prior_samples, p.temperature, p.momentum_std, p.execute) == (25, 2.0, False, "sample")


def test_schedules_grow_the_horizon_and_shrink_the_std_floor() -> None:
    agent = TDMPC(TDMPCConfig(**{**TINY, "horizon": 5}, seed=0), toy_spec(), "cpu")
    assert (agent.plan_horizon(), agent.std_floor()) == (1, 0.5)
    agent.steps = 50
    assert agent.plan_horizon() == 3 and agent.std_floor() == pytest.approx(0.275)
    agent.steps = 10_000
    assert (agent.plan_horizon(), agent.std_floor()) == (5, 0.05)
    assert linear_schedule(1, 5, 0, 3) == 5


# ---------------------------------------------------------------------- acting
def test_actions_in_bounds_warm_start_per_member_and_reset_at_episode_start() -> None:
    agent = TDMPC(TDMPCConfig(**TINY, seed=0), toy_spec(), "cpu")
    agent.steps = 1_000  # past the horizon schedule: plans of 3 steps
    obs = torch.randn(2, 3)
    a = agent.act(obs, explore=True)
    assert a.shape == (2, 2) and bool((a.abs() <= 2).all())
    mean = agent.planner.mean
    assert mean.shape == (2, 3, 2) and bool(mean[:, :2].any(-1).all())  # shifted plans kept
    agent.episode_start(torch.tensor([True, False]))
    assert not agent.planner.mean[0].any() and torch.equal(agent.planner.mean[1], mean[1])
    agent.steps = 0  # the horizon schedule restarts the plans at 1 step
    agent.act(obs)
    assert agent.planner.mean.shape == (2, 1, 2)


def test_update_changes_priorities_and_keeps_targets_slow() -> None:
    agent = TDMPC(TDMPCConfig(**TINY, seed=0, seed_updates=False), toy_spec(), "cpu")
    _fill(agent)
    before = agent.replay.priority.clone()
    enc_before = [p.clone() for p in agent.target.encoder.parameters()]
    losses = agent.update(2)
    assert set(losses) >= {"consistency_loss", "reward_loss", "value_loss", "pi_loss"}
    assert losses.pop("num_updates") == 2
    assert all(torch.isfinite(v) for v in losses.values())
    assert not torch.equal(agent.replay.priority, before)
    # EMA every 2nd update with tau 0.01: the target moved, but only by ~1% of the way.
    online = list(agent.model.encoder.parameters())
    for old, new, src in zip(enc_before, agent.target.encoder.parameters(), online, strict=True):
        moved, gap = (new - old).norm(), (src - old).norm()
        assert 0 < moved <= 0.011 * gap + 1e-8


def test_first_update_catches_up_on_the_seed_steps() -> None:
    agent = TDMPC(TDMPCConfig(**TINY, seed=0), toy_spec(), "cpu")
    _fill(agent, steps=20)
    assert agent.update(1)["num_updates"] == 1 + 40  # one per stored transition (2 x 20)
    assert agent.updates == 41
    agent.update(1)
    assert agent.updates == 42


def test_compiled_update_and_plan_match_eager() -> None:
    """``compile=True`` (inductor here; CUDA graphs on CUDA) computes what eager does: the
    same losses over two updates (same windows, same noise) and the same planned actions."""
    cfg = dict(TINY, seed=0, seed_updates=False)
    eager = TDMPC(TDMPCConfig(**cfg), toy_spec(), "cpu")
    compiled = TDMPC(TDMPCConfig(**cfg, compile=True), toy_spec(), "cpu")
    assert compiled._model_loss is not compiled._model_loss_eager
    obs = torch.randn(2, 3)
    results = []
    for agent in (eager, compiled):
        _fill(agent)
        losses = agent.update(2)
        agent.steps = 1_000  # full horizon
        results.append((losses, agent.act(obs, explore=True)))
    (le, ae), (lc, ac) = results
    for key in ("consistency_loss", "reward_loss", "value_loss", "pi_loss", "grad_norm"):
        assert torch.allclose(le[key], lc[key], rtol=1e-4, atol=1e-6), key
    assert torch.allclose(ae, ac, atol=1e-4)


# ---------------------------------------------------------------------- checkpoints
def test_state_dict_round_trip_is_exact() -> None:
    cfg = TDMPCConfig(**TINY, seed=0, seed_updates=False)
    a = TDMPC(cfg, toy_spec(), "cpu")
    _fill(a)
    a.update(3)
    obs = torch.randn(2, 3)
    a.act(obs, explore=True)
    blob = io.BytesIO()
    torch.save(a.state_dict(), blob)
    blob.seek(0)
    b = TDMPC(TDMPCConfig(**TINY, seed=1, seed_updates=False), toy_spec(), "cpu")
    b.load_state_dict(torch.load(blob, weights_only=True))
    assert torch.equal(a.act(obs, explore=True), b.act(obs, explore=True))
    la, lb = a.update(2), b.update(2)
    assert torch.equal(la["value_loss"], lb["value_loss"])
    assert torch.equal(a.replay.priority, b.replay.priority)
    assert torch.equal(a.act(obs), b.act(obs))
    policy = TDMPC(cfg, toy_spec(), "cpu")
    policy.load_policy_state_dict(a.policy_state_dict())
    acted = []
    for agent in (a, policy):  # as the runner evaluates: own random numbers, fresh plans
        with evaluation_rng(agent, 7):
            agent.episode_start(torch.ones(2, dtype=torch.bool))
            acted.append(agent.act(obs))
    assert torch.equal(*acted)
    assert policy._replay is None  # an evaluation copy never allocates the replay


def _train(steps: int, starts: int, tmp_path, resume=None, num_envs: int = 1, **kw) -> object:
    checkpoint_every = kw.pop("checkpoint_every", 0)
    agent_cfg = kw.pop("agent", None) or TDMPCConfig.small(seed=0, **kw)
    cfg = TrainConfig(
        task="Pendulum-v1",
        backend="torch",
        num_envs=num_envs,
        total_steps=steps,
        learning_starts=starts,
        eval_every=0,
        eval_episodes=5,
        checkpoint_every=checkpoint_every,
        log_every=steps,
        run_dir=str(tmp_path),
        progress=False,
    )
    return train(TDMPC, agent_cfg, cfg, resume=resume)


def test_resumed_run_matches_uninterrupted_run_with_cem(tmp_path) -> None:
    """Two members, CEM in place of MPPI: resuming from the mid-run checkpoint ends with
    exactly the networks, replay priorities and warm starts of the run never stopped."""
    agent = TDMPCConfig(**TINY, seed=0, planner="cem")
    kw = dict(num_envs=2, checkpoint_every=120, agent=agent)
    full = _train(240, 60, tmp_path, **kw)
    assert torch.isfinite(torch.tensor(full.eval_mean))
    final = ckpt.load(full.checkpoint)["agent"]
    middle = full.checkpoint.parent / ckpt.checkpoint_name(120)
    resumed = _train(240, 60, tmp_path, resume=middle, **kw)
    again = ckpt.load(resumed.checkpoint)["agent"]
    assert again["updates"] == final["updates"] > 100
    # the runner counts every gradient update: 2 per engine step from env step 60 on, plus
    # the catch-up's one per transition stored by then (60)
    assert full.updates == resumed.updates == final["updates"] == 2 * 91 + 60
    for name, value in final["model"].items():
        assert torch.equal(again["model"][name], value), name
    assert torch.equal(again["replay"]["priority"], final["replay"]["priority"])
    assert torch.equal(again["planner"]["mean"], final["planner"]["mean"])


# ---------------------------------------------------------------------- learning
def _cli_eval(checkpoint) -> float:
    out = run_cli("eval", str(checkpoint))
    assert out.returncode == 0, out.stderr
    return float(re.search(r"(-?\d+\.\d+) ±", out.stdout).group(1))


@pytest.mark.slow
def test_learns_pendulum_and_cli_eval_reproduces_it(tmp_path) -> None:
    engine = make_engine("Pendulum-v1", 5, backend="torch", seed=0)
    untrained = TDMPC(TDMPCConfig.small(seed=0), engine.spec, "cpu")
    assert float(run_evaluation(untrained, engine, seed=10_000)[0].mean()) < -900
    result = _train(2_000, 500, tmp_path, batch_size=64)
    assert result.eval_mean >= -400, result
    assert _cli_eval(result.checkpoint) == pytest.approx(result.eval_mean, abs=1e-3)
