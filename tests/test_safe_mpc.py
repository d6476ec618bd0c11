"""Safe CEM-MPC on the quadrotor: the task, the GP's one-step disturbance prediction, the
CLF/CBF filter (unchanged when safe, exact QP otherwise), closed-loop safety and tracking
under seeded wind, checkpoints, and the experiment through the runner and ``rlwb eval``."""

from __future__ import annotations

import pytest
import torch

from rlwb import make_engine
from rlwb.agents.safe_cem_mpc import SafeCEMMPC, SafeCEMMPCConfig
from rlwb.agents.safe_cem_mpc.constraints import obstacle_cbf_rows, tracking_clf_row
from rlwb.agents.safe_cem_mpc.residual import ResidualModel, gp_features
from rlwb.envs.quadrotor.obstacles import offsets
from rlwb.errors import ConfigError
from rlwb.planners.gp import GPConfig, SlidingWindowGP
from rlwb.planners.safety import (
    Constraints,
    MinimalInterventionFilter,
    SafeController,
    SafetyFilterConfig,
)
from rlwb.planners.sampling import SamplingConfig
from rlwb.safe_mpc_report import closed_loop

pytest.importorskip("qpsolvers")

CPU = torch.device("cpu")
# A smaller CEM than the default (100 x 3 iterations instead of 200 x 4) so the closed-loop
# tests fit the suite's budget; the behaviour asserted holds for the default too (benchmark).
FAST_PLANNER = dict(samples=100, horizon=12, iterations=3, elites=10, init_std=0.3)


def _agent(task: str, variant: str, num_envs: int, **task_kwargs) -> tuple[SafeCEMMPC, object]:
    engine = make_engine(task, num_envs, backend="torch", seed=0, **task_kwargs)
    config = SafeCEMMPCConfig(variant=variant, planner=SamplingConfig(**FAST_PLANNER))
    return SafeCEMMPC(config, engine.spec, CPU), engine


def _pd(obs: torch.Tensor, task) -> torch.Tensor:  # noqa: ANN001
    _, _, acc = task.reference_at(obs[:, 12])
    return acc - 4 * (obs[:, 0:3] - obs[:, 6:9]) - 3 * (obs[:, 3:6] - obs[:, 9:12])


# ---------------------------------------------------------------------- task and model
def test_task_registered_and_model_matches_task_with_true_disturbance():
    engine = make_engine("Quadrotor-Figure8-v0", 5, backend="torch", seed=3)
    obs = engine.reset(seed=3)
    assert obs.shape == (5, 13) and engine.spec.action_dim == 3
    task, state = engine.task, engine.get_state().float()
    actions = torch.randn(5, 1, 1, 3)
    nxt, _, _, _, info = engine.step(actions[:, 0, 0])
    true_d = torch.stack([info[f"disturbance_{a}"] for a in "xyz"], 1)

    class TrueResidual:  # the GP slot filled with the true disturbance
        def predict(self, x, variance=False):  # noqa: ANN001
            return true_d[:, None], None

    model = ResidualModel(task, TrueResidual(), "velocity")
    ret = model.rollout(state[:, [0, 1, 2, 3, 4, 5, 6]], actions)
    cost = task.tracking_cost(
        nxt[:, 12], nxt[:, 0:3], nxt[:, 3:6], task.clip_action(actions[:, 0, 0])
    )
    torch.testing.assert_close(ret[:, 0], -cost, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("task_id", ["Quadrotor-Circle-v0", "Quadrotor-Figure8-v0"])
def test_reference_velocity_and_acceleration_are_its_derivatives(task_id):
    task = make_engine(task_id, 1, backend="torch", dtype=torch.float64).task
    t, h = torch.linspace(0.1, 9.0, 50, dtype=torch.float64), 1e-5
    p, v, a = task.reference_at(t)
    (p_plus, v_plus, _), (p_minus, v_minus, _) = task.reference_at(t + h), task.reference_at(t - h)
    torch.testing.assert_close((p_plus - p_minus) / (2 * h), v, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close((v_plus - v_minus) / (2 * h), a, rtol=1e-6, atol=1e-6)


def test_step_reference_and_wind_statistics():
    engine = make_engine("Quadrotor-Step-v0", 256, backend="torch", seed=0)
    engine.reset(seed=0)
    task, state = engine.task, engine.get_state().float()
    p, _, _ = task.reference_at(torch.tensor([0.5, 1.5]))
    torch.testing.assert_close(p, torch.tensor([[0.0, 0.0, 1.0], [1.0, 1.0, 1.5]]))
    # Gust part of the wind over many members and times: the configured 1 m/s per axis.
    gusts = []
    for t in torch.linspace(0, 20, 41):
        state[:, 0], state[:, 4:7] = t, 0.0
        gusts.append(task.disturbance(state) * task.mass / task.drag - state[:, 7:10])
    std = torch.stack(gusts).std(dim=(0, 1))
    torch.testing.assert_close(std, torch.full((3,), task.gust_intensity), rtol=0.15, atol=0)


def test_bad_settings_raise_config_errors():
    with pytest.raises(ConfigError, match="reference"):
        make_engine("Quadrotor-Circle-v0", 1, backend="torch", reference="square")
    with pytest.raises(ConfigError, match="sphere"):
        make_engine("Quadrotor-Circle-v0", 1, backend="torch", obstacles="cube:1,2,3")
    with pytest.raises(ConfigError, match="variant"):
        SafeCEMMPCConfig(variant="magic")
    spec = make_engine("Pendulum-v1", 1, backend="torch").spec
    with pytest.raises(ConfigError, match="Quadrotor"):
        SafeCEMMPC(SafeCEMMPCConfig(), spec, CPU)
    spec = make_engine("Quadrotor-Circle-v0", 1, backend="torch").spec
    with pytest.raises(ConfigError, match="lengthscales has 4 entries; the GP has 3 inputs"):
        SafeCEMMPC(SafeCEMMPCConfig(features="velocity"), spec, CPU)


# ---------------------------------------------------------------------- GP
def test_gp_cuts_one_step_disturbance_error_by_5x_on_held_out_steps():
    """Each prediction is made before its transition joins the window (held out). Measured:
    RMSE 0.12 m/s^2 against 1.92 for the nominal model (d = 0), a factor of 15."""
    engine = make_engine("Quadrotor-Circle-v0", 8, backend="torch", seed=0)
    task, obs = engine.task, engine.reset(seed=0)
    gp = SlidingWindowGP(GPConfig(), 8, 4, 3)
    err_gp, err_nominal = [], []
    for step in range(150):
        u = _pd(obs, task)
        x = gp_features(obs[:, 3:6], obs[:, 12], "velocity_time")
        mean, _ = gp.predict(x[:, None], variance=False)
        nxt, _, _, _, info = engine.step(u)
        d = torch.stack([info[f"disturbance_{a}"] for a in "xyz"], 1)
        if step >= 20:  # after a second of data
            err_gp.append((mean[:, 0] - d).square().sum(1))
            err_nominal.append(d.square().sum(1))
        gp.add(x, (nxt[:, 3:6] - obs[:, 3:6]) / task.dt - task.clip_action(u))
        obs = nxt
    rmse_gp = torch.stack(err_gp).mean().sqrt()
    rmse_nominal = torch.stack(err_nominal).mean().sqrt()
    assert rmse_nominal > 1.0  # the wind is there
    assert rmse_gp < rmse_nominal / 5
    assert int(gp.size.max()) == GPConfig().window  # the window is bounded


def test_gp_window_equals_exact_gp_on_last_points():
    cfg = GPConfig(window=5, lengthscales=(0.7,), constant_mean=False)
    gp = SlidingWindowGP(cfg, 2, 1, 1, dtype=torch.float64)
    xs, ys = torch.randn(9, 2, 1, dtype=torch.float64), torch.randn(9, 2, 1, dtype=torch.float64)
    for x, y in zip(xs, ys, strict=True):
        gp.add(x, y)
    query = torch.linspace(-2, 2, 7, dtype=torch.float64)[None, :, None].expand(2, 7, 1)
    mean, var = gp.predict(query)
    for b in range(2):
        x, y = xs[-5:, b], ys[-5:, b]
        k = torch.exp(-0.5 * ((x - x.T) / 0.7) ** 2) + cfg.noise_std**2 * torch.eye(5)
        ks = torch.exp(-0.5 * ((query[b] - x.T) / 0.7) ** 2)
        torch.testing.assert_close(mean[b], ks @ torch.linalg.solve(k, y))
        exact_var = 1 - (ks @ torch.linalg.solve(k, ks.T)).diagonal()
        torch.testing.assert_close(var[b], exact_var)


# ---------------------------------------------------------------------- filter
def _filter(**kw) -> MinimalInterventionFilter:
    low, high = torch.tensor([-6.0, -6.0, -9.81]), torch.tensor([6.0, 6.0, 9.81])
    return MinimalInterventionFilter(SafetyFilterConfig(**kw), low, high)


def test_filter_returns_planner_action_unchanged_when_safe():
    qp = _filter(clf_weight=1.0)
    obstacles = torch.tensor([[1.0, 5.0, 5.0, 0.0, 0.3]])  # far away
    g = torch.Generator().manual_seed(0)
    pos, vel = torch.rand(16, 3, generator=g), 0.1 * torch.randn(16, 3, generator=g)
    cbf_a, cbf_b = obstacle_cbf_rows(pos, vel, torch.zeros(16, 3), torch.zeros(16, 3),
                                     obstacles, 0.1, qp.config)  # fmt: skip
    u0 = torch.randn(16, 3, generator=g)
    clf_a, clf_b = torch.randn(16, 3, generator=g), torch.full((16,), 1e3)  # CLF satisfied
    result = qp(u0, Constraints(cbf_a, cbf_b, clf_a, clf_b))
    assert torch.equal(result.action, u0) and not bool(result.intervened.any())


def test_filter_solves_the_qp_exactly_when_unsafe():
    """One active half-space and an inactive box: the QP's answer is the projection."""
    qp = _filter()
    a = torch.tensor([[[1.0, 2.0, -1.0]], [[0.0, 1.0, 0.0]]])
    b = torch.tensor([[3.0], [-10.0]])  # member 0 violated by u0 = 0, member 1 safe
    u0 = torch.zeros(2, 3)
    result = qp(u0, Constraints(a, b))
    projection = a[0, 0] * 3.0 / a[0, 0].square().sum()
    torch.testing.assert_close(result.action[0], projection, rtol=1e-4, atol=1e-4)
    assert torch.equal(result.action[1], u0[1])
    assert result.intervened.tolist() == [True, False] and float(result.cbf_slack[0]) < 1e-5


# The filter's problem at step 74 of the README's ``--train.task-kwargs obstacles mixed
# wind_speed 4`` run: feasible, but its unscaled rows stalled Clarabel at its iteration limit.
README_U0 = torch.tensor([[0.920341, -1.229330, -1.128839]])
README_ROWS = Constraints(
    torch.tensor([[[-6.692186, 1.187670, 0.0], [-5.392186, -1.412330, -0.228234],
                   [0.207814, 1.187670, -0.228234]]]),
    torch.tensor([[-341.702911, -246.340149, 0.767258]]),
)  # fmt: skip


def _pillar_rows(speed: float, qp: MinimalInterventionFilter) -> Constraints:
    """The CBF rows of a drone 0.7 m before a pillar's axis, flying at it at ``speed``."""
    pillar = torch.tensor([[1.0, 1.95, 0.0, 0.0, 0.25]])
    pos, vel, zero = (
        torch.tensor([[1.25, 0.0, 1.0]]),
        torch.tensor([[speed, 0, 0]]),
        torch.zeros(1, 3),
    )
    return Constraints(*obstacle_cbf_rows(pos, vel, zero, zero, pillar, 0.1, qp.config))


def test_filter_solves_the_problem_the_readme_run_stalled_on():
    result = _filter()(README_U0, README_ROWS)
    a, b = README_ROWS.cbf_a[0], README_ROWS.cbf_b[0]
    assert bool((a @ result.action[0] >= b - 1e-4).all()), result
    assert not bool(result.infeasible.any() or result.fallback.any())
    # The exact answer: the projection of u0 onto the one violated row (the others hold).
    row, need = a[2], b[2] - a[2] @ README_U0[0]
    torch.testing.assert_close(result.action[0], README_U0[0] + need * row / row.square().sum(),
                               rtol=1e-4, atol=1e-4)  # fmt: skip


def test_infeasible_state_gets_the_least_violating_action_and_is_counted():
    """3 m/s towards a pillar 0.7 m away needs more than the box's 6 m/s^2 of braking: no
    action satisfies the CBF; the filter brakes fully and flags the member (the other one,
    at 1 m/s, is feasible)."""
    qp = _filter()
    fast, slow = _pillar_rows(3.0, qp), _pillar_rows(1.0, qp)
    rows = Constraints(torch.cat([fast.cbf_a, slow.cbf_a]), torch.cat([fast.cbf_b, slow.cbf_b]))
    result = qp(torch.zeros(2, 3), rows)
    assert result.infeasible.tolist() == [True, False] and not bool(result.fallback.any())
    assert float(result.action[0, 0]) == pytest.approx(-6.0, abs=1e-4)
    assert float(result.cbf_slack[0]) > 1.0 and float(result.cbf_slack[1]) < 1e-5


def test_clf_never_buys_tracking_with_safety():
    """A CLF weighted so heavily that its relaxation outbids the CBF's slack penalty: the
    joint QP would break the CBF row (u_x >= 1) to please the CLF (u_x <= -5); the filter
    re-solves without the CLF and keeps the member safe."""
    qp = _filter(clf_weight=1e6, clf_yields=False)
    rows = Constraints(
        torch.tensor([[[1.0, 0.0, 0.0]]]), torch.tensor([[1.0]]),
        torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([-5.0]),
    )  # fmt: skip
    result = qp(torch.zeros(1, 3), rows)
    assert float(result.action[0, 0]) >= 1 - 1e-5 and not bool(result.infeasible.any())


def test_solver_failure_falls_back_to_the_least_violating_action(monkeypatch):
    """With the solver failing on every problem, the filter still answers: the feasible
    README state gets an action meeting its rows, the infeasible pillar state full braking,
    both flagged as fallbacks."""
    import qpsolvers

    monkeypatch.setattr(qpsolvers, "solve_qp", lambda *args, **kwargs: None)
    qp = _filter()
    result = qp(README_U0, README_ROWS)
    assert result.fallback.tolist() == [True] and not bool(result.infeasible.any())
    a, b = README_ROWS.cbf_a[0], README_ROWS.cbf_b[0]
    assert bool((a @ result.action[0] >= b - 1e-4).all())
    result = qp(torch.zeros(1, 3), _pillar_rows(3.0, qp))
    assert result.fallback.tolist() == [True] and result.infeasible.tolist() == [True]
    assert float(result.action[0, 0]) == pytest.approx(-6.0)


def test_agent_reports_infeasible_and_fallback_counts(monkeypatch):
    """The counts reach TensorBoard through ``update``'s metrics (``safety/*``)."""
    import qpsolvers

    agent, engine = _agent("Quadrotor-Obstacles-v0", "gp_filter", 2)
    obs = engine.reset(seed=0)
    obs[:, 0:6] = torch.tensor([1.25, 0.0, 1.0, 3.0, 0.0, 0.0])  # at the pillar, fast
    monkeypatch.setattr(qpsolvers, "solve_qp", lambda *args, **kwargs: None)
    action = agent.act(obs)
    assert bool(((action >= engine.task.low) & (action <= engine.task.high)).all())
    metrics = agent.update(1)
    assert metrics["safety/fallbacks"] == 2 and metrics["safety/infeasible"] == 2


def test_cbf_rows_are_the_second_order_barrier_condition():
    """``a.u - b = h'' + (a1 + a2) h' + a1 a2 h`` along ``p(t) = p + v t + (u + d) t^2 / 2``
    (finite differences, sphere and cylinder), and the GP tightening lowers it by exactly
    ``2 confidence sum |r_i| sigma_i``."""
    cfg = SafetyFilterConfig(cbf_alpha1=1.5, cbf_alpha2=2.5, margin=0.05, confidence=2.0)
    obstacles = torch.tensor(
        [[0.0, 0.3, -0.2, 1.0, 0.4], [1.0, -1.0, 0.5, 0.0, 0.3]], dtype=torch.float64
    )
    g = torch.Generator().manual_seed(1)
    pos, vel, u, d = (torch.randn(6, 3, generator=g, dtype=torch.float64) for _ in range(4))
    sigma = torch.rand(6, 3, generator=g, dtype=torch.float64)
    a, b = obstacle_cbf_rows(pos, vel, d, torch.zeros_like(d), obstacles, 0.1, cfg)
    radius = obstacles[:, 4] + 0.1 + cfg.margin

    def h(t: float) -> torch.Tensor:
        p = pos + vel * t + 0.5 * (u + d) * t * t
        return offsets(p, obstacles).square().sum(-1) - radius.square()

    eps = 1e-4
    h1 = (h(eps) - h(-eps)) / (2 * eps)
    h2 = (h(eps) - 2 * h(0.0) + h(-eps)) / eps**2
    psi = h2 + 4.0 * h1 + 3.75 * h(0.0)
    torch.testing.assert_close((a @ u[..., None])[..., 0] - b, psi, rtol=1e-5, atol=1e-5)
    _, b_tight = obstacle_cbf_rows(pos, vel, d, sigma, obstacles, 0.1, cfg)
    r = offsets(pos, obstacles)
    torch.testing.assert_close(b_tight - b, 4.0 * (r.abs() * sigma[:, None]).sum(-1))


def test_clf_row_decreases_the_tracking_lyapunov_function_where_it_binds():
    """Members put off the figure-eight (0.4 m and 0.5 m/s away), the disturbance known, and
    a proposed action that pushes the sliding variable away (``V' = |s|^2 > 0``): with the
    default (soft) CLF the filter binds on every member, and one step later ``V`` has fallen
    where the unfiltered action raised it."""
    cfg = SafetyFilterConfig()
    assert cfg.clf_weight > 0  # the CLF is on by default
    engine = make_engine("Quadrotor-Figure8-v0", 16, backend="torch", seed=0, dtype=torch.float64)
    task, g = engine.task, torch.Generator().manual_seed(2)
    engine.reset(seed=0)
    state = engine.get_state()
    away = torch.nn.functional.normalize(torch.randn(16, 3, generator=g, dtype=torch.float64))
    state[:, 1:4] += 0.4 * away  # position and velocity errors in one direction: |s| = 1.3
    state[:, 4:7] += 0.5 * away
    obs = engine.set_state(state)
    d = task.disturbance(engine.get_state())
    p_ref, v_ref, a_ref = task.reference_at(obs[:, 12])

    def lyapunov(o: torch.Tensor) -> torch.Tensor:
        p_ref, v_ref, _ = task.reference_at(o[:, 12])
        s = (o[:, 3:6] - v_ref) + cfg.clf_lambda * (o[:, 0:3] - p_ref)
        return 0.5 * s.square().sum(-1)

    ev = obs[:, 3:6] - v_ref
    s = ev + cfg.clf_lambda * (obs[:, 0:3] - p_ref)
    u0 = a_ref - d - cfg.clf_lambda * ev + s  # makes V' = |s|^2
    clf_a, clf_b = tracking_clf_row(obs[:, 0:3], obs[:, 3:6], p_ref, v_ref, a_ref, d, cfg)
    no_cbf = torch.zeros(16, 0, 3, dtype=torch.float64), torch.zeros(16, 0, dtype=torch.float64)
    qp = MinimalInterventionFilter(cfg, task.low, task.high)
    result = qp(u0, Constraints(*no_cbf, clf_a, clf_b))
    assert bool(result.intervened.all())
    v_now = lyapunov(obs)
    v_filtered = lyapunov(engine.step(result.action)[0])
    engine.set_state(state)
    v_pushed = lyapunov(engine.step(u0)[0])
    assert bool((v_pushed > v_now).all())
    assert bool((v_filtered < v_now).all()), v_filtered / v_now


def test_any_policy_behind_the_filter_stays_clear():
    """A PD tracker flies through the pillar on the circle; behind :class:`SafeController`
    (CBF on the true disturbance) the same tracker never touches one."""
    clearance = {}
    for filtered in (False, True):
        engine = make_engine("Quadrotor-Obstacles-v0", 4, backend="torch", seed=0)
        task = engine.task
        pd = lambda obs, task=task: _pd(obs, task).clamp(task.low, task.high)  # noqa: E731

        def rows(obs: torch.Tensor, engine=engine, task=task) -> Constraints:
            d = task.disturbance(engine.get_state().float())
            zero, cfg = torch.zeros_like(d), SafetyFilterConfig()
            a, b = obstacle_cbf_rows(
                obs[:, 0:3], obs[:, 3:6], d, zero, task.obstacle_tensor, task.body_radius, cfg
            )
            return Constraints(a, b)

        qp = MinimalInterventionFilter(SafetyFilterConfig(), task.low, task.high)
        controller = SafeController(pd, rows, qp) if filtered else pd
        obs, worst = engine.reset(seed=0), []
        for _ in range(160):
            obs, _, _, _, info = engine.step(controller(obs))
            worst.append(info["min_obstacle_distance"])
        clearance[filtered] = torch.stack(worst).min(0).values
    assert bool((clearance[False] < 0).all())
    assert bool((clearance[True] > 0).all())


# ---------------------------------------------------------------------- closed loop
def test_filter_prevents_collisions_the_unfiltered_planner_makes():
    """Seeded strong-wind episodes on the pillar course: the nominal CEM hits a pillar,
    the GP-tightened filter keeps every episode collision-free."""
    traces = {}
    for variant in ("nominal", "gp_filter"):
        agent, _ = _agent("Quadrotor-Obstacles-v0", variant, 4)
        traces[variant] = closed_loop(agent, "Quadrotor-Obstacles-v0", 4, seed=0, horizon=120)
    assert traces["nominal"].summary()["collided_episodes"] >= 1
    safe = traces["gp_filter"].summary()
    assert safe["collided_episodes"] == 0 and safe["min_clearance"] > 0
    assert 0 < safe["intervention_rate"] < 0.6


def test_gp_tracks_better_than_nominal():
    rmse = {}
    for variant in ("nominal", "gp"):
        agent, _ = _agent("Quadrotor-Figure8-v0", variant, 3)
        trace = closed_loop(agent, "Quadrotor-Figure8-v0", 3, seed=1, horizon=100)
        rmse[variant] = trace.summary()["tracking_rmse"]
    assert rmse["gp"] < 0.85 * rmse["nominal"], rmse


@pytest.mark.parametrize(
    "options",
    [
        dict(variant="nominal_filter", feedback="shift"),
        dict(variant="gp_filter", rollout_samples=True, features="velocity",
             gp=GPConfig(lengthscales=(2.0,))),
        dict(variant="gp_filter", feedback="none", safety=SafetyFilterConfig(clf_weight=5.0)),
    ],
)  # fmt: skip
def test_every_option_acts_within_bounds(options):
    engine = make_engine("Quadrotor-Obstacles-v0", 2, backend="torch", seed=0)
    config = SafeCEMMPCConfig(planner=SamplingConfig(**{**FAST_PLANNER, "samples": 40}), **options)
    agent, obs = SafeCEMMPC(config, engine.spec, CPU), engine.reset(seed=0)
    for _ in range(4):
        action = agent.act(obs)
        assert bool(torch.isfinite(action).all())
        assert bool(((action >= engine.task.low) & (action <= engine.task.high)).all())
        obs = engine.step(action)[0]


def test_checkpoint_round_trip_continues_identically():
    agent, engine = _agent("Quadrotor-Obstacles-v0", "gp_filter", 2)
    obs = engine.reset(seed=4)
    for _ in range(5):
        obs = engine.step(agent.act(obs))[0]
    clone, _ = _agent("Quadrotor-Obstacles-v0", "gp_filter", 2)
    clone.load_state_dict(agent.state_dict())
    torch.testing.assert_close(clone.act(obs), agent.act(obs), rtol=0, atol=0)


def test_experiment_runs_through_the_runner_and_rlwb_eval_reproduces_it(tmp_path):
    from rlwb.evaluate import evaluate
    from rlwb.experiments import safe_mpc_obstacles

    small = ["--agent.planner.samples", "60", "--agent.planner.elites", "6",
             "--agent.planner.iterations", "2", "--agent.planner.horizon", "10"]  # fmt: skip
    result = safe_mpc_obstacles.main(
        ["--train.total-steps", "20", "--train.eval-horizon", "20", "--train.eval-episodes",
         "2", "--train.run-dir", str(tmp_path), "--train.no-progress", *small]
    )  # fmt: skip
    for plot in ("trajectories", "tracking_error", "obstacle_distance", "filter_interventions"):
        assert (result.run_dir / "plots" / f"{plot}.png").exists()
    mean, _, returns = evaluate(result.checkpoint, episodes=None)
    assert returns == result.eval_returns and mean == result.eval_mean


def test_readme_task_kwargs_example_runs(tmp_path):
    """``rlwb train safe_mpc_obstacles --train.task-kwargs obstacles mixed wind_speed 4`` (the
    README's example) with a small planner, past the step whose QP once stalled the solver."""
    from rlwb.experiments import safe_mpc_obstacles

    small = ["--agent.planner.samples", "60", "--agent.planner.elites", "6",
             "--agent.planner.iterations", "2", "--agent.planner.horizon", "10"]  # fmt: skip
    result = safe_mpc_obstacles.main(
        ["--train.task-kwargs", "obstacles", "mixed", "wind_speed", "4", "--train.total-steps",
         "90", "--train.eval-horizon", "10", "--train.eval-episodes", "1", "--train.run-dir",
         str(tmp_path), "--train.no-progress", *small]
    )  # fmt: skip
    assert result.checkpoint.exists() and result.env_steps == 90
