"""Planner core: each method reaches a stated accuracy on small known problems."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest
import torch

from rlwb import make_engine, tasks
from rlwb.errors import ConfigError
from rlwb.planners.base import Planner
from rlwb.planners.ensemble import EnsembleConfig, EnsembleModel, ProbabilisticEnsemble
from rlwb.planners.gradient import GradientConfig, GradientPlanner
from rlwb.planners.latent import LatentModel, LinearLatentWorld
from rlwb.planners.models import EngineModel, Model, check_plan_shapes
from rlwb.planners.sampling import SamplingConfig, SamplingPlanner, colored_noise


class QuadraticModel:
    """Return -sum_t ||a_t - target||^2; the state row is the target. Optimum: a_t = target."""

    def rollout(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        check_plan_shapes(states, actions)
        return -((actions - states[:, None, None, :]) ** 2).sum((2, 3))


class PointMassModel:
    """1-D double integrator per action dim, state [x, v]; reward -x^2 - 0.01 a^2.

    Pushed toward 0 from x0 > 0, the best first action is strongly negative."""

    dt = 0.1

    def rollout(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        b, n, h, _ = check_plan_shapes(states, actions)
        x = states[:, None, 0].expand(b, n).clone()
        v = states[:, None, 1].expand(b, n).clone()
        ret = torch.zeros(b, n)
        for t in range(h):
            a = actions[:, :, t, 0]
            v = v + self.dt * a
            x = x + self.dt * v
            ret = ret - x**2 - 0.01 * a**2
        return ret


TARGETS = torch.tensor([[0.3, -0.5], [-0.8, 0.1], [0.0, 0.6]])
LOW, HIGH = -torch.ones(2), torch.ones(2)


def _planner(**kw) -> SamplingPlanner:
    return SamplingPlanner(SamplingConfig(**kw), LOW, HIGH, seed=0)


@pytest.mark.parametrize(
    "config, tol",
    [
        (dict(method="cem", samples=200, elites=20, horizon=5, iterations=8), 0.05),
        (dict(method="mppi", samples=200, elites=50, horizon=5, iterations=8,
              temperature=0.3), 0.05),
        (dict(method="icem", samples=200, elites=20, horizon=5, iterations=6, noise_beta=2.0,
              keep_elites=0.3, population_decay=1.25, execute="best"), 0.05),
        (dict(method="random", samples=2000, elites=1, horizon=1, iterations=1), 0.15),
    ],
    ids=["cem", "mppi", "icem", "random"],
)  # fmt: skip
def test_quadratic_reaches_target(config, tol):
    """Every member's first action lands within ``tol`` of its own target in one call."""
    planner = _planner(**config)
    model = QuadraticModel()
    assert isinstance(model, Model)
    action = planner.plan(model, TARGETS)
    assert action.shape == (3, 2)
    assert (action - TARGETS).abs().max() < tol


def test_cem_point_mass_brakes_toward_goal():
    """From x=1 at rest, the plan pushes hard toward 0; from x=-1, the other way; at the
    goal with zero velocity, it stays near zero."""
    planner = SamplingPlanner(
        SamplingConfig(samples=300, elites=30, horizon=15, iterations=5),
        -torch.ones(1) * 2,
        torch.ones(1) * 2,
        seed=1,
    )
    states = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    action = planner.plan(PointMassModel(), states)[:, 0]
    assert action[0] < -1.0 and action[1] > 1.0 and action[2].abs() < 0.3
    # closed loop: 40 MPC steps bring both displaced members within 0.1 of the goal
    model = PointMassModel()
    for _ in range(40):
        a = planner.plan(model, states)[:, 0]
        v = states[:, 1] + model.dt * a
        states = torch.stack([states[:, 0] + model.dt * v, v], 1)
    assert states[:, 0].abs().max() < 0.1


def test_warm_start_shifts_mean_and_reset_forgets_it():
    planner = _planner(samples=100, elites=10, horizon=4, iterations=3)
    planner.plan(QuadraticModel(), TARGETS)
    mean = planner.mean.clone()
    assert mean[:, :-1].abs().mean() > 0.2  # learned something, shifted one step
    assert (mean[:, -1] == 0).all()  # the new last step starts in the middle
    planner.reset(torch.tensor([True, False, False]))
    assert (planner.mean[0] == 0).all() and torch.equal(planner.mean[1:], mean[1:])


def test_prior_candidates_are_used():
    """An exact policy-prior sequence wins over noisy samples when acting on the best."""
    planner = _planner(samples=20, elites=2, horizon=3, iterations=1, execute="best")
    prior = TARGETS[:, None, None, :].expand(3, 1, 3, 2)
    action = planner.plan(QuadraticModel(), TARGETS, prior=prior)
    assert torch.allclose(action, TARGETS, atol=1e-6)
    with pytest.raises(ValueError, match="prior sequences"):
        planner.plan(QuadraticModel(), TARGETS, prior=prior[:, :, :2])


def test_seeded_plans_reproduce_and_checkpoint_round_trips():
    a = _planner(method="icem", samples=50, elites=5, horizon=4, iterations=2, keep_elites=0.4)
    b = _planner(method="icem", samples=50, elites=5, horizon=4, iterations=2, keep_elites=0.4)
    a.plan(QuadraticModel(), TARGETS)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.plan(QuadraticModel(), TARGETS), b.plan(QuadraticModel(), TARGETS))


def test_colored_noise_has_unit_variance_and_correlates_in_time():
    g = torch.Generator().manual_seed(0)
    white = colored_noise((4000, 32), 0.0, g, torch.device("cpu"))
    red = colored_noise((4000, 32), 2.0, g, torch.device("cpu"))
    for x in (white, red):
        assert abs(float(x.std()) - 1) < 0.05
    lag1 = lambda x: float((x[:, 1:] * x[:, :-1]).mean())  # noqa: E731
    assert abs(lag1(white)) < 0.05 and lag1(red) > 0.7


def test_bad_config_and_nan_models_raise_clear_errors():
    with pytest.raises(ConfigError, match="method"):
        _planner(method="cma")
    with pytest.raises(ConfigError, match="elites"):
        _planner(samples=10, elites=20)

    class NaNModel:
        def rollout(self, states, actions):
            return torch.full(actions.shape[:2], float("nan"))

    with pytest.raises(ValueError, match="NaN for every candidate"):
        _planner(samples=10, elites=2).plan(NaNModel(), TARGETS)


# ---------------------------------------------------------------------- every planner x model
def _planners(horizon: int, low: torch.Tensor, high: torch.Tensor) -> dict[str, object]:
    small = dict(samples=12, elites=3, horizon=horizon, iterations=2)
    out = {
        m: SamplingPlanner(SamplingConfig(method=m, **small), low, high, seed=0)
        for m in ("cem", "mppi", "icem", "random")
    }
    out["gradient"] = GradientPlanner(
        GradientConfig(samples=3, horizon=horizon, iterations=3), low, high, seed=0
    )
    return out


def _models(engine) -> dict[str, tuple[object, torch.Tensor]]:
    spec = engine.spec
    obs = engine.reset(seed=0)
    ens = ProbabilisticEnsemble(
        3, 1, EnsembleConfig(members=2, hidden=16, layers=1, particles=2), learn_reward=False
    )
    learned = ProbabilisticEnsemble(
        3, 1, EnsembleConfig(members=2, hidden=16, layers=1, particles=2), learn_reward=True
    )
    world = LinearLatentWorld(obs_dim=3, latent_dim=4, action_dim=1)
    return {
        "engine": (EngineModel(engine, differentiable=True), engine.get_state()),
        "ensemble_task_reward": (EnsembleModel(ens, tasks.reward_from_obs(spec.task_id)), obs),
        "ensemble_learned_reward": (EnsembleModel(learned), obs),
        "latent": (LatentModel(world), world.encode(obs).detach()),
    }  # fmt: skip


def test_every_planner_runs_with_every_model_kind():
    """Five planners x four model kinds on Pendulum-v1 (torch): in-bounds finite actions
    for all 3 members, and a differentiable path for the gradient planner."""
    engine = make_engine("Pendulum-v1", 3, backend="torch", seed=0)
    low, high = engine.spec.action_low, engine.spec.action_high
    for model_name, (model, states) in _models(engine).items():
        for name, planner in _planners(4, low, high).items():
            action = planner.plan(model, states)
            assert action.shape == (3, 1), (model_name, name)
            assert torch.isfinite(action).all() and (action.abs() <= 2 + 1e-6).all()


def test_engine_model_scores_what_the_engine_does():
    """EngineModel's return of a sequence equals stepping a copy of the real engine."""
    engine = make_engine("Pendulum-v1", 2, backend="torch", seed=3)
    engine.reset(seed=3)
    state = engine.get_state()
    actions = torch.rand(2, 3, 5, 1, generator=torch.Generator().manual_seed(0)) * 4 - 2
    returns = EngineModel(engine).rollout(state, actions)
    check = make_engine("Pendulum-v1", 6, backend="torch", seed=0)
    check.set_state(state.repeat_interleave(3, 0))
    expected = torch.zeros(6)
    for t in range(5):
        _, r, *_ = check.step(actions.reshape(6, 5, 1)[:, t])
        expected += r
    assert torch.allclose(returns.reshape(6), expected, atol=1e-5)


def test_gradient_planner_lowers_the_cost_of_a_random_plan():
    """Pendulum-v1 through the differentiable torch task: 10 Adam steps cut the horizon
    cost of the best of 4 random initial plans by at least 5x (from near upright; measured
    11-30x)."""
    engine = make_engine("Pendulum-v1", 4, backend="torch", seed=0)
    engine.reset(seed=0)
    state = engine.get_state()
    state[:, 0] = torch.tensor([0.3, -0.2, 0.35, -0.3])  # theta: torque 2 can hold these
    state[:, 1] = 0.0  # theta_dot
    planner = GradientPlanner(
        GradientConfig(samples=4, horizon=15, iterations=10, lr=0.3, init_std=1.0),
        engine.spec.action_low, engine.spec.action_high, seed=0,
    )  # fmt: skip
    planner.plan(EngineModel(engine, differentiable=True), state)
    first, last = -planner.first_returns, -planner.last_returns
    assert (last * 5 < first).all(), (first, last)


def test_latent_model_discounts_and_adds_terminal_value():
    world = LinearLatentWorld(obs_dim=2, latent_dim=2, action_dim=1, discount=0.5)
    z = torch.tensor([[1.0, 0.0]])
    actions = torch.zeros(1, 1, 2, 1)
    z1 = world.next(z, actions[0, :, 0])
    z2 = world.next(z1, actions[0, :, 1])
    expected = world.reward(z, actions[0, :, 0]) + 0.5 * world.reward(z1, actions[0, :, 1])
    expected = expected + 0.25 * world.value(z2)
    assert torch.allclose(LatentModel(world).rollout(z, actions)[0], expected)
    prior = LatentModel(world).policy_prior(z, lambda z: -z[:, :1], samples=3, horizon=2)
    assert prior.shape == (1, 3, 2, 1)


def test_population_sizes_follow_the_config():
    """N per call is ``samples`` (+ kept elites, + iCEM's mean, + prior), shrinking only
    with iCEM's population decay and never below 2 x elites."""
    seen = []

    class Recording(QuadraticModel):
        def rollout(self, states, actions):
            seen.append(actions.shape[1])
            return super().rollout(states, actions)

    _planner(method="mppi", samples=10, elites=10, horizon=2, iterations=2).plan(
        Recording(), TARGETS
    )
    assert seen == [10, 10]
    seen.clear()
    config = SamplingConfig.icem(samples=40, elites=8, horizon=2, iterations=3)
    SamplingPlanner(config, LOW, HIGH).plan(Recording(), TARGETS)
    kept = round(0.3 * 8)
    assert seen == [40, 32 + kept, 25 + kept + 1]


class SurvivalModel:
    """Every candidate 'survives': all returns tie exactly (a survival-only reward)."""

    def rollout(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        b, n, _, _ = check_plan_shapes(states, actions)
        return torch.full((b, n), 5.0)


def test_effort_tie_break_executes_the_calmest_of_exactly_tied_candidates():
    """Random shooting among 64 exactly tied candidates: ``tie_break="effort"`` executes the
    one with the smallest mean squared action of all 64 (sample order would pick any)."""
    config = SamplingConfig(method="random", samples=64, horizon=3, elites=1, tie_break="effort")
    planner = SamplingPlanner(config, -torch.ones(2), torch.ones(2), seed=0)
    planner.plan(SurvivalModel(), torch.zeros(3, 1))
    g = torch.Generator().manual_seed(0)  # the planner's own draws, to compare with
    u = torch.rand(3, 64, 3, 2, generator=g) * 2 - 1
    calmest = u[torch.arange(3), (u**2).mean((2, 3)).argmin(1)]
    assert torch.allclose(planner.last_plan, calmest)
    with pytest.raises(ConfigError, match="tie_break"):
        SamplingConfig(tie_break="least").validate()


def test_std_ramp_perturbs_early_steps_less():
    """``std_ramp = 4``: the first iteration's std grows from init_std / 4 at the first
    step to init_std at the last (geometrically); 1 keeps it flat; < 1 is rejected."""
    config = SamplingConfig(samples=8, horizon=5, elites=2, init_std=0.4, std_ramp=4.0)
    planner = SamplingPlanner(config, -torch.ones(1), torch.ones(1))
    std = planner._initial_std(torch.zeros(2, 5, 1))
    expected = 0.4 * 4.0 ** (torch.arange(5) / 4 - 1)
    assert torch.allclose(std[1, :, 0], expected) and std[0, 0, 0] == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="std_ramp"):
        SamplingConfig(std_ramp=0.5).validate()


# ---------------------------------------------------------------------- planner protocol
def test_every_planner_satisfies_the_planner_protocol():
    """CEM, MPPI, iCEM, random shooting, the gradient planner and TD-MPC's MPPI are all
    ``Planner``s, and each (but random shooting) keeps a warm start that ``state_dict``
    carries; an object without the warm-start methods is not one."""
    from rlwb.agents import TDMPC
    from tests.agent_setups import setup_of

    planners = _planners(4, LOW, HIGH)
    setup = setup_of(TDMPC)
    engine = setup.engine()
    tdmpc = TDMPC(setup.config(), engine.spec, torch.device("cpu"))
    tdmpc.act(engine.reset(seed=0), explore=False)
    planners["tdmpc_mppi"] = tdmpc.planner
    assert tdmpc.planner.config.method == "mppi"
    for name, planner in planners.items():
        assert isinstance(planner, Planner), name
        if name != "tdmpc_mppi":
            planner.plan(QuadraticModel(), TARGETS)
        warm = planner.state_dict()["mean"]
        assert (warm is None) == (name == "random"), name  # random shooting keeps none
        assert planner.last_plan is not None and planner.last_returns is not None, name

    class PlanOnly:
        def plan(self, model, states, prior=None):  # noqa: ANN001, ANN201
            return states

    assert not isinstance(PlanOnly(), Planner)


# ---------------------------------------------------------------------- task independence
FORBIDDEN = ("rlwb.agents", "rlwb.envs", "rlwb.experiments")
PLANNERS_DIR = pathlib.Path(__file__).resolve().parents[1] / "planners"


def _imported_modules(path: pathlib.Path) -> set[str]:
    """Every module an ``import`` statement of ``path`` names (relative imports resolved)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(["rlwb", "planners"][: 3 - node.level] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_planners_import_no_agent_task_or_experiment():
    """No module of ``planners/`` imports from ``rlwb.agents``, ``rlwb.envs`` or
    ``rlwb.experiments``, directly (its import statements) or through what it imports
    (``sys.modules`` after importing every planners module in a fresh interpreter)."""
    modules = sorted(PLANNERS_DIR.glob("*.py"))
    assert len(modules) > 5
    direct = {
        f"{p.name}: {name}"
        for p in modules
        for name in _imported_modules(p)
        if name.startswith(FORBIDDEN)
    }
    assert not direct, f"planners import task or agent code: {sorted(direct)}"
    names = [f"rlwb.planners.{p.stem}" for p in modules if p.stem != "__init__"]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing planners loads {out.stdout.strip()}"
