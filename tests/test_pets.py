"""PETS: the truncated-normal CEM, the ensemble's training to convergence, and learning."""

from __future__ import annotations

import pytest
import torch

from rlwb.errors import ConfigError
from rlwb.planners.sampling import TRUNCATED_VARIANCE, SamplingConfig, SamplingPlanner


class _Recorder:
    """A model scoring ``-|u - target|^2`` in normalised units, keeping every call's draws."""

    def __init__(self, planner: SamplingPlanner, target: float) -> None:
        self.planner, self.target, self.draws = planner, target, []

    def rollout(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        u = 2 * (actions - self.planner.low) / (self.planner.high - self.planner.low) - 1
        self.draws.append(u)
        return -((u - self.target) ** 2).sum((-2, -1))


def _truncated(**kw) -> tuple[SamplingPlanner, _Recorder]:
    config = SamplingConfig(sampling="truncated", min_std=0.0, horizon=3, **kw)
    planner = SamplingPlanner(config, torch.tensor([-3.0, 0.0]), torch.tensor([3.0, 2.0]),
                              seed=0)  # fmt: skip
    return planner, _Recorder(planner, target=0.9)


def test_truncated_cem_draws_within_bounds_with_the_bounded_variance():
    """First iteration around a warm start at normalised 0 and 0.8: draws never leave the
    bounds and their variance is TRUNCATED_VARIANCE x min(init_std, distance / 2)^2 per
    step (0.774 x 0.25 in the middle, 0.774 x 0.01 near the bound)."""
    planner, model = _truncated(samples=40_000, elites=4_000, iterations=1, init_std=0.5)
    planner.mean = torch.tensor([[[0.0, 0.0], [0.8, -0.8], [0.0, 0.8]]])
    planner.plan(model, torch.zeros(1, 1))
    u = model.draws[0][0]  # [N, H, A]
    assert float(u.abs().max()) <= 1.0
    room = torch.tensor([[1.0, 1.0], [0.2, 0.2], [1.0, 0.2]]) / 2
    expected = TRUNCATED_VARIANCE * torch.minimum(torch.full_like(room, 0.5), room) ** 2
    torch.testing.assert_close(u.var(0), expected, rtol=0.04, atol=0)
    assert TRUNCATED_VARIANCE == pytest.approx(0.7737, abs=1e-4)


def test_truncated_cem_smooths_the_variance_not_the_std():
    """Second iteration's draws have the variance ``momentum x old + (1 - momentum) x the
    elites' variance`` (bounded by the new mean's distance to the bounds), times 0.774."""
    m = 0.3
    planner, model = _truncated(samples=40_000, elites=8_000, iterations=2, init_std=0.3,
                                momentum=m)  # fmt: skip
    planner.plan(model, torch.zeros(1, 1))
    first, second = model.draws[0][0], model.draws[1][0]
    returns = -((first - 0.9) ** 2).sum((-2, -1))
    elites = first[returns.topk(8_000).indices]
    var = m * 0.3**2 + (1 - m) * elites.var(0, unbiased=False)
    mean = m * 0.0 + (1 - m) * elites.mean(0)
    room = (torch.minimum(1 - mean, 1 + mean) / 2) ** 2
    torch.testing.assert_close(second.var(0), TRUNCATED_VARIANCE * torch.minimum(var, room),
                               rtol=0.05, atol=0)  # fmt: skip
    smoothed_std = (m * 0.3 + (1 - m) * elites.std(0, unbiased=False)) ** 2
    assert float((smoothed_std - var).abs().max()) > 1e-4  # the two rules differ here


def test_sampling_option_is_checked_and_clipped_stays_the_default():
    assert SamplingConfig().sampling == "clipped"
    with pytest.raises(ConfigError, match="sampling"):
        SamplingConfig(sampling="uniform").validate()


# ---------------------------------------------------------------------- ensemble
def test_ensemble_trains_to_convergence_and_plans_with_its_best_members():
    """2000 random InvertedPendulum transitions, one round of at most 20 epochs with early
    stopping: the held-out one-step error of the next observation is below 1e-3 (under
    1/1000 of the 'nothing changes' predictor's; measured 7.5e-5), and the 5 members
    planned with are the 5 of 7 with the lowest held-out error."""
    from test_cem_mpc import _collect

    from rlwb.agents.pets import PETS, PETSConfig
    from rlwb.engine import make_engine
    from rlwb.planners.ensemble import EnsembleConfig

    engine = make_engine("InvertedPendulum-v5", 8, backend="mujoco", seed=0)
    config = PETSConfig(
        planner=SamplingConfig(samples=8, horizon=3, iterations=1, elites=2),
        ensemble=EnsembleConfig(members=7, elites=5, hidden=64, batch_size=64, particles=10),
        train_epochs=20,
    )
    agent = PETS(config, engine.spec, "cpu")
    _collect(engine, agent, 250, seed=0)
    losses = agent.train_model()
    held = {k: v[: len(agent.heldout)] for k, v in agent.heldout.data.items()}
    still = float(((held["next_obs"] - held["obs"]) ** 2).mean())
    assert losses["model_holdout_mse"] < 1e-3 and losses["model_holdout_mse"] < 1e-3 * still
    ens = agent.ensemble
    target = ens.targets(held["obs"], held["next_obs"], held["reward"])
    scores = ens.member_scores(held["obs"], held["action"], target)
    assert ens.planned.tolist() == sorted(scores.argsort()[:5].tolist())
    assert agent.act(held["obs"][:2]).shape == (2, 1)


def test_observation_processing_round_trips_and_is_checked():
    """Angles enter as sine/cosine, hidden entries not at all, absolute entries are
    predicted as values: ``next_obs(obs, targets(...))`` gives back the next observation."""
    from rlwb.planners.ensemble import EnsembleConfig, ProbabilisticEnsemble

    cfg = EnsembleConfig(members=2, hidden=8, layers=1, particles=2, angle_dims=(1,),
                         hidden_dims=(0,), absolute_dims=(2,))  # fmt: skip
    ens = ProbabilisticEnsemble(4, 1, cfg, learn_reward=False)
    obs, nxt = torch.randn(5, 4), torch.randn(5, 4)
    assert ens.inputs(obs, torch.zeros(5, 1)).shape == (5, 2 + 2 + 1)
    target = ens.targets(obs, nxt, torch.zeros(5))
    assert torch.equal(target[:, 2], nxt[:, 2])
    torch.testing.assert_close(ens.next_obs(obs, target), nxt)
    with pytest.raises(ConfigError, match="angle_dims"):
        ProbabilisticEnsemble(4, 1, EnsembleConfig(members=2, particles=2, angle_dims=(4,)),
                              learn_reward=False)  # fmt: skip


def _stepwise_returns(model, states, actions):
    """What ``EnsembleModel.rollout`` computes, the plain way: one ensemble call, one draw
    and one reward call per step."""
    b, n, h, a = actions.shape
    ens, members = model.ensemble, model.ensemble.planned
    e = len(members)
    per = model.particles // e
    m = b * n * per
    obs = states[None, :, None, None].expand(e, b, n, per, -1).reshape(e, m, -1)
    acts = actions[None, :, :, None].expand(e, b, n, per, h, a).reshape(e, m, h, a)
    ret, alive, o = torch.zeros(e, m), torch.ones(e, m, dtype=torch.bool), ens.obs_dim
    for t in range(h):
        mean, logvar = ens(obs, acts[:, :, t], members)
        noise = torch.randn(mean.shape, generator=model.generator)
        next_obs = ens.next_obs(obs, mean + torch.exp(0.5 * logvar) * noise)
        if model.reward_fn is None:
            reward, term = mean[..., o], torch.zeros_like(alive)
        else:
            reward, term = model.reward_fn(obs.reshape(e * m, o), acts[:, :, t].reshape(e * m, a),
                                           next_obs.reshape(e * m, o))  # fmt: skip
            reward, term = reward.reshape(e, m), term.reshape(e, m)
        ret = ret + torch.where(alive, reward, torch.zeros_like(reward))
        alive = alive & ~term
        obs = next_obs
    if model.terminal_value is not None:
        value = model.terminal_value(obs.reshape(e * m, o)).reshape(e, m)
        ret = ret + torch.where(alive, value, torch.zeros_like(value))
    return ret.reshape(e, b, n, per).mean((0, 3))


@pytest.mark.parametrize("variant", ["terminating", "learned_reward", "processed"])
def test_rollout_equals_the_stepwise_computation_bit_for_bit(variant):
    """The rollout computes rewards and terminations for the whole horizon after the
    network steps: returns equal a step-by-step rollout's exactly (elites planned, particles
    terminating mid-horizon, a terminal value; a learned reward; angle, hidden and absolute
    entries with standardised targets)."""
    from rlwb.planners.ensemble import EnsembleConfig, EnsembleModel, ProbabilisticEnsemble

    terminated = []

    def falls(obs, action, next_obs):  # noqa: ANN001, ANN202
        term = next_obs[:, 1].abs() > 0.3
        terminated.append(term)
        return (~term).float() - 0.1 * action.square().sum(1), term

    kw = {"processed": dict(angle_dims=(1,), hidden_dims=(0,), absolute_dims=(2,),
                            normalize_targets=True)}.get(variant, {})  # fmt: skip
    cfg = EnsembleConfig(members=3, elites=2, hidden=16, layers=2, particles=4, **kw)
    ens = ProbabilisticEnsemble(4, 2, cfg, learn_reward=variant == "learned_reward", seed=1)
    g = torch.Generator().manual_seed(0)
    obs, act = torch.randn(200, 4, generator=g), torch.randn(200, 2, generator=g)
    ens.fit_normalizer(obs, act, torch.randn(200, ens.out_dim, generator=g) * 0.3)
    ens.planned.copy_(torch.tensor([0, 2]))
    reward_fn = None if variant == "learned_reward" else falls
    value = (lambda x: -x.square().mean(1)) if variant == "terminating" else None
    states, actions = torch.randn(2, 4, generator=g) * 0.2, torch.rand(2, 5, 6, 2, generator=g)
    fast = EnsembleModel(ens, reward_fn, seed=3, terminal_value=value)
    plain = EnsembleModel(ens, reward_fn, seed=3, terminal_value=value)
    got, want = (
        fast.rollout(states, actions * 2 - 1),
        _stepwise_returns(plain, states, actions * 2 - 1),
    )
    assert torch.equal(got, want)
    if variant == "terminating":
        fell = float(torch.cat(terminated).float().mean())
        assert 0 < fell < 1  # some particles fell, not all


# ---------------------------------------------------------------------- learning
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_pets_balances_the_pendulum_for_whole_episodes(seed, tmp_path):
    """``rlwb train pets_mujoco`` (InvertedPendulum-v5 preset) within 2,000 env steps (250
    random): some training episode survives the whole 1000 steps."""
    from rlwb.experiments import pets_mujoco
    from rlwb.plot import read_scalars

    args = ["--train.total-steps", "2000", "--train.seed", str(seed), "--train.no-progress",
            "--train.run-dir", str(tmp_path), "--train.eval-episodes", "1",
            "--train.eval-horizon", "10"]  # fmt: skip
    result = pets_mujoco.main(args)
    steps, returns = read_scalars(result.run_dir, "charts/episodic_return")
    assert returns.max() >= 1000, f"best training episode {returns.max():.0f}"


def test_side_by_side_benchmark_smoke_runs_the_rlwb_side(tmp_path):
    """``benchmarks/pets_vs_mbrl.py --smoke`` (rlwb only: mbrl-lib lives in its own
    environment) runs a tiny budget in a worker process and reports its curve and speed."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "pets_vs_mbrl.py"
    spec = importlib.util.spec_from_file_location("pets_vs_mbrl", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.main(["--smoke", "--contenders", "rlwb", "--run-dir", str(tmp_path)])
    run = results["rlwb"][0]
    assert run["steps"] and run["wall"] > 0 and len(run["steps"]) == len(run["returns"])
    assert run["cpu"] > 0
    # the run's files stay under --run-dir; --collect reads the same curve back from them
    collected = bench.main(["--collect", str(tmp_path), "--steps", "60"])["rlwb"][0]
    assert (collected["steps"], collected["returns"]) == (run["steps"], run["returns"])
