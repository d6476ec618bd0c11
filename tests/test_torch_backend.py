"""The torch backend: Gymnasium parity, gradients, exact maze walls, reproducibility."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlwb.engine import make_engine
from rlwb.envs.classic.maze import PointMaze, behavior_descriptor, split_goal_obs
from rlwb.errors import ActionError, ConfigError

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small batches run faster on one thread, and far faster on a loaded machine, where
    OpenMP's barrier waits on descheduled threads (17 ms for a 4k-element sin on 2 threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _engine(task: str, n: int, seed: int = 0, **kw) -> object:
    return make_engine(task, n, backend="torch", seed=seed, dtype=F64, **kw)


def _load(engine, states: np.ndarray) -> None:
    """Load physics states ``[B, S]`` with elapsed 0 into every member."""
    s = torch.as_tensor(states, dtype=F64)
    engine.reset()
    engine.set_state(torch.cat([s, torch.zeros(len(s), 1, dtype=F64)], dim=1))


# ---------------------------------------------------------------------- Gymnasium parity
def test_pendulum_matches_gymnasium_step_by_step_through_truncation():
    """Obs within 1e-6 (Gymnasium rounds obs to float32), state and reward within 1e-9."""
    n, rng = 4, np.random.default_rng(0)
    envs = [gym.make("Pendulum-v1") for _ in range(n)]
    for i, env in enumerate(envs):
        env.reset(seed=i)
    engine = _engine("Pendulum-v1", n)
    _load(engine, np.stack([env.unwrapped.state for env in envs]))
    for t in range(200):
        act = rng.uniform(-3.0, 3.0, size=(n, 1))  # beyond the bounds: clipping is checked
        obs, rew, term, trunc, info = engine.step(torch.as_tensor(act))
        for i, env in enumerate(envs):
            g_obs, g_rew, g_term, g_trunc, _ = env.step(act[i])
            assert g_trunc == bool(trunc[i]) and g_term == bool(term[i]), t
            np.testing.assert_allclose(info["final_obs"][i].numpy(), g_obs, atol=1e-6)
            assert abs(float(rew[i]) - g_rew) < 1e-9
            if t < 199:
                np.testing.assert_allclose(
                    engine.physics[i].numpy(), env.unwrapped.state, atol=1e-9
                )
    assert bool(trunc.all()) and t == 199  # truncated at Gymnasium's 200 and autoreset
    assert torch.equal(engine.elapsed, torch.zeros(n, dtype=torch.int64))


def test_mountain_car_matches_gymnasium_through_termination_and_truncation():
    """Members 0 and 2 pump energy and reach the goal (+100, terminated; member 2 starts by
    hitting the left wall); member 1 idles until the 999-step time limit. State within 1e-6
    (float32 state, as Gymnasium stores it)."""
    envs = [gym.make("MountainCarContinuous-v0") for _ in range(3)]
    for i, env in enumerate(envs):
        env.reset(seed=10 + i)
    envs[2].unwrapped.state = np.array([-1.15, -0.06])
    engine = _engine("MountainCarContinuous-v0", 3)
    _load(engine, np.stack([env.unwrapped.state for env in envs]))
    done, events, hit_wall = [False] * 3, {}, False
    for t in range(999):
        v = np.array([float(env.unwrapped.state[1]) for env in envs])
        act = np.where(v >= 0, 1.5, -1.5)[:, None]  # 1.5: clipped force, unclipped cost
        act[1] = 0.0
        obs, rew, term, trunc, info = engine.step(torch.as_tensor(act))
        for i, env in enumerate(envs):
            if done[i]:
                continue
            g_obs, g_rew, g_term, g_trunc, _ = env.step(act[i])
            np.testing.assert_allclose(info["final_obs"][i].numpy(), g_obs, atol=1e-6)
            assert abs(float(rew[i]) - g_rew) < 1e-6, (t, i)
            assert (g_term, g_trunc) == (bool(term[i]), bool(trunc[i])), (t, i)
            hit_wall |= bool(i == 2 and g_obs[0] == np.float32(-1.2))
            if g_term or g_trunc:
                done[i] = True
                events[i] = (t, g_term, g_rew)
    assert events[0][1] and events[0][2] > 99  # reached the goal with the +100 bonus
    assert events[2][1] and hit_wall
    assert events[1] == (998, False, 0.0)  # truncated at Gymnasium's 999 steps


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


@pytest.mark.parametrize(
    "task,bounds",
    [
        ("Pendulum-v1", [(-np.pi, np.pi), (-1, 1)]),
        ("MountainCarContinuous-v0", [(-0.6, -0.4), (0, 0)]),
    ],
)
def test_reset_distribution_matches_gymnasium(task, bounds):
    env = gym.make(task)
    ours = make_engine(task, 20000, backend="torch", seed=3, dtype=F64)
    ours.reset()
    mine = ours.physics.numpy()
    theirs = []
    for k in range(1000):
        env.reset(seed=k)
        theirs.append(np.array(env.unwrapped.state, dtype=np.float64))
    theirs = np.stack(theirs)
    for j, (lo, hi) in enumerate(bounds):
        assert mine[:, j].min() >= lo and mine[:, j].max() <= hi
        if lo == hi:
            assert np.all(theirs[:, j] == lo)
            continue
        # two-sample KS at ~alpha 0.001: 1.95 * sqrt((n + m) / (n m))
        assert _ks(mine[:, j], theirs[:, j]) < 1.95 * np.sqrt(1 / 20000 + 1 / 1000)
        assert abs(mine[:, j].mean() - (lo + hi) / 2) < 0.01 * (hi - lo)


# ---------------------------------------------------------------------- gradients
def _central_fd(f, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(x)
    flat = grad.view(-1)
    for k in range(x.numel()):
        d = torch.zeros_like(x).view(-1)
        d[k] = eps
        flat[k] = (f(x + d.view_as(x)) - f(x - d.view_as(x))) / (2 * eps)
    return grad


def _check_grads(task: str, init: torch.Tensor, actions: torch.Tensor, **kw) -> None:
    engine = _engine(task, actions.shape[0], **kw)
    engine.reset()

    def total(acts: torch.Tensor, state: torch.Tensor = init) -> torch.Tensor:
        return engine.rollout(acts, init_state=state, differentiable=True).returns.sum()

    a = actions.clone().requires_grad_(True)
    s = init.clone().requires_grad_(True)
    g_a, g_s = torch.autograd.grad(total(a, s), (a, s))
    with torch.no_grad():
        fd_a = _central_fd(total, actions)
        fd_s = _central_fd(lambda st: total(actions, st), init)
    assert g_a.abs().max() > 1e-3  # the check is not vacuous
    torch.testing.assert_close(g_a, fd_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_s[:, :-1], fd_s[:, :-1], rtol=1e-5, atol=1e-6)


def test_pendulum_return_gradient_matches_finite_differences():
    gen = torch.Generator().manual_seed(0)
    init = torch.tensor([[1.0, 0.2, 0.0], [-0.5, -0.3, 0.0]], dtype=F64)  # away from wrap/clip
    actions = 0.5 * torch.randn(2, 12, 1, generator=gen, dtype=F64)
    _check_grads("Pendulum-v1", init, actions)


def test_point_mass_return_gradient_matches_finite_differences_away_from_walls():
    gen = torch.Generator().manual_seed(1)
    init = torch.tensor([[0.0, 0.0, 0.1, -0.1, 1.0, -1.0, 0.0]], dtype=F64)  # open room centre
    actions = 0.3 * torch.randn(1, 10, 2, generator=gen, dtype=F64)
    _check_grads("PointMaze-Open-Dense-v0", init, actions)


def test_closed_loop_policy_gradient_flows_and_plain_rollouts_keep_no_graph():
    engine = make_engine("Pendulum-v1", 8, backend="torch", seed=0)
    engine.reset()
    policy = torch.nn.Linear(3, 1)
    result = engine.rollout(policy, horizon=20, differentiable=True)
    result.returns.mean().backward()
    assert policy.weight.grad is not None and policy.weight.grad.abs().sum() > 0
    plain = engine.rollout(policy, horizon=5, init_state=engine.get_state())
    assert not plain.returns.requires_grad
    obs, rew, *_ = engine.step(torch.zeros(8, 1, requires_grad=True))
    assert not rew.requires_grad  # requires_grad=False engines never build a graph


# ---------------------------------------------------------------------- the maze's walls
def _wall_rects(task: PointMaze) -> np.ndarray:
    """World-coordinate [x0, x1, y0, y1] of every wall cell, from the map alone."""
    s, rects = task.maze_size_scaling, []
    for i, row in enumerate(task.grid):
        for j, c in enumerate(row):
            if c == 1:
                x, y = task.cell_center(i, j)
                rects.append([x - s / 2, x + s / 2, y - s / 2, y + s / 2])
    return np.array(rects)


def _hits(rects: np.ndarray, x0, x1, y0, y1) -> np.ndarray:
    """Member-wise: does the box [x0, x1] x [y0, y1] overlap a wall with positive area?"""
    ox = (x0[:, None] < rects[None, :, 1]) & (x1[:, None] > rects[None, :, 0])
    oy = (y0[:, None] < rects[None, :, 3]) & (y1[:, None] > rects[None, :, 2])
    return (ox & oy).any(1)


@pytest.mark.parametrize(
    "maze,kw",
    [
        ("Deceptive", {}),
        ("UMaze", {"radius": 0.3}),
        ("Open", {"radius": 0.0}),
        ("UMaze", {"maze_size_scaling": 2.0}),
    ],
)
def test_point_mass_never_enters_or_crosses_a_wall(maze, kw):
    """Random maximal actions for 4096 members x 150 steps; every step's x-then-y swept box
    (what the integrator does when one substep suffices) must stay out of every wall cell."""
    engine = make_engine(f"PointMaze-{maze}-Dense-v0", 4096, backend="torch", seed=7, **kw)
    task = engine.task
    assert task.substeps == 1
    rects, r = _wall_rects(task), task.radius * task.maze_size_scaling
    gen = torch.Generator().manual_seed(0)
    engine.reset()
    for _ in range(150):
        before = engine.physics[:, :2].double().numpy()
        act = torch.randint(0, 2, (4096, 2), generator=gen).float() * 2 - 1
        engine.step(act)
        after = engine.physics[:, :2].double().numpy()
        x0, y0 = before.T
        x1, y1 = after.T
        sweep_x = _hits(rects, np.minimum(x0, x1) - r, np.maximum(x0, x1) + r, y0 - r, y0 + r)
        sweep_y = _hits(rects, x1 - r, x1 + r, np.minimum(y0, y1) - r, np.maximum(y0, y1) + r)
        assert not sweep_x.any() and not sweep_y.any()
    assert float(engine.physics[:, 2:4].abs().max()) <= task.max_speed


def test_fast_point_mass_uses_substeps_and_stays_in_free_space():
    engine = make_engine(
        "PointMaze-Deceptive-Dense-v0", 2048, backend="torch", seed=1, max_speed=30.0
    )
    task = engine.task
    assert task.substeps == 6  # 30 * 0.1 / 0.5
    rects, gen = _wall_rects(task), torch.Generator().manual_seed(2)
    engine.reset()
    for _ in range(100):
        engine.step(torch.rand(2048, 2, generator=gen) * 2 - 1)
        x, y = engine.physics[:, :2].double().numpy().T
        assert not _hits(
            rects, x - task.radius, x + task.radius, y - task.radius, y + task.radius
        ).any()
    assert not bool(task.is_wall_at(engine.physics[:, :2]).any())


def test_point_mass_stops_a_skin_before_the_wall():
    engine = _engine("PointMaze-Open-Dense-v0", 1)
    engine.set_state(torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 0.0], dtype=F64))
    for _ in range(30):
        engine.step(torch.tensor([[1.0, 0.0]], dtype=F64))
    x, y, vx, vy = engine.physics[0, :4].tolist()
    assert x == pytest.approx(2.5 - 0.1 - 1e-3, abs=1e-9) and vx == 0.0 and y == 0.0


def test_maze_goal_observation_reward_and_descriptor():
    engine = make_engine("PointMaze-UMaze-Goal-v0", 64, backend="torch", seed=0)
    obs = engine.reset()
    assert obs.is_contiguous() and engine.physics[:, 0].is_contiguous()  # see envs.classic.base
    parts = split_goal_obs(obs)
    assert set(engine.task.goal_observation_space().spaces) == set(parts)
    assert engine.observation_slices["desired_goal"] == slice(6, 8)
    torch.testing.assert_close(parts["achieved_goal"], parts["observation"][:, :2])
    assert len({tuple(g) for g in parts["desired_goal"].tolist()}) > 1  # goals vary
    obs, rew, *_, info = engine.step(torch.zeros(64, 2))
    parts = split_goal_obs(info["final_obs"])
    torch.testing.assert_close(
        rew, engine.task.compute_reward(parts["achieved_goal"], parts["desired_goal"])
    )
    result = engine.rollout(lambda o: -torch.ones(o.shape[0], 2), horizon=20)
    torch.testing.assert_close(behavior_descriptor(result.final_obs), result.final_obs[:, :2])
    torch.testing.assert_close(result.infos["x_position"][:, -1], result.final_obs[:, 0])


def test_deceptive_maze_traps_the_straight_line():
    """Pushing straight at the goal ends in the cup under it, two cells short."""
    engine = _engine("PointMaze-Deceptive-Dense-v0", 1)
    engine.reset()
    result = engine.rollout(lambda o: torch.tensor([[0.0, 1.0]], dtype=F64), horizon=100)
    final = result.infos["distance"][0, -1]
    assert 1.5 < float(final) < 2.5


# ---------------------------------------------------------------------- engine contract
def test_seeded_runs_reproduce_through_autoreset():
    def run(seed: int) -> torch.Tensor:
        engine = make_engine("Pendulum-v1", 16, backend="torch", seed=seed)
        gen = torch.Generator().manual_seed(0)
        out = [engine.reset()]
        for _ in range(230):  # past the 200-step limit: autoreset draws from the generator
            out.append(engine.step(torch.rand(16, 1, generator=gen) * 4 - 2)[0])
        return torch.stack(out)

    assert torch.equal(run(5), run(5))
    assert not torch.equal(run(5), run(6))


def test_fused_step_equals_the_base_class_step():
    """TorchEngine fuses Engine.step's bookkeeping into the task step; the two must agree
    exactly (every info key too) through termination, truncation and autoreset."""
    from rlwb.engine.base import Engine

    fused, base = (_engine("MountainCarContinuous-v0", 6, seed=4) for _ in range(2))
    for engine in (fused, base):
        engine.reset()
        state = engine.get_state()
        state[:3, -1] = 990  # three members hit the time limit soon
        engine.set_state(state)
    ended = torch.zeros(6, dtype=torch.bool)
    for _ in range(250):
        act = torch.where(fused.physics[:, 1:2] >= 0, 1.0, -1.0).to(F64)
        out_f, out_b = fused.step(act), Engine.step(base, act)
        for a, b in zip(out_f[:4], out_b[:4], strict=True):
            assert torch.equal(a, b)
        assert out_f[4].keys() == out_b[4].keys()
        for key in out_f[4]:
            assert torch.equal(out_f[4][key], out_b[4][key]), key
        assert torch.equal(fused.get_state(), base.get_state())
        ended |= out_f[2]
    assert bool(ended[3:].any())  # some members terminated, others truncated, both reset
    info = fused.step(act)[4]
    kept = {k: info[k].clone() for k in ("episode_return", "episode_length")}
    fused.set_state(fused.get_state()[:2], members=torch.tensor([0, 1]))
    fused.reset()
    for key, value in kept.items():  # infos never change when the engine's counters do
        assert torch.equal(info[key], value)


def test_state_clone_and_rollout_agree_with_step():
    engine = _engine("CartpoleSwingup-v0", 6)
    engine.reset()
    for _ in range(5):
        engine.step(torch.rand(6, 1, dtype=F64))
    snapshot = engine.get_state()
    actions = torch.rand(6, 30, 1, dtype=F64) * 2 - 1
    stepped = torch.stack([engine.step(actions[:, t])[1] for t in range(30)], 1)
    result = engine.rollout(actions, init_state=snapshot)
    torch.testing.assert_close(result.rewards, stepped)
    clones = engine.rollout(actions[:1].expand(6, -1, -1), init_state=snapshot[2])
    assert torch.equal(clones.returns, clones.returns[:1].expand(6))


def test_engine_state_dict_resumes_exactly_through_autoreset():
    saved = make_engine("PointMaze-Deceptive-Goal-v0", 4, backend="torch", seed=0)
    saved.reset()
    for _ in range(5):
        saved.step(torch.rand(4, 2) * 2 - 1)
    resumed = make_engine("PointMaze-Deceptive-Goal-v0", 4, backend="torch", seed=9)
    resumed.load_state_dict(saved.state_dict())
    gen = torch.Generator().manual_seed(0)
    for _ in range(210):  # past the 200-step limit: resets draw from the restored generator
        act = torch.rand(4, 2, generator=gen) * 2 - 1
        for a, b in zip(saved.step(act)[:4], resumed.step(act)[:4], strict=True):
            assert torch.equal(a, b)


def test_bad_input_gets_clear_errors():
    with pytest.raises(ConfigError, match="task arguments"):
        make_engine("Pendulum-v1", 2, backend="torch", gravity=3.0)
    with pytest.raises(ConfigError, match="border"):
        make_engine("PointMaze-Open-Dense-v0", 2, backend="torch", maze_map="#.#\n#..\n###")
    with pytest.raises(ConfigError, match="unknown characters"):
        make_engine("PointMaze-Open-Dense-v0", 2, backend="torch", maze_map="###\n#x#\n###")
    engine = make_engine("MountainCarContinuous-v0", 2, backend="torch")
    engine.reset()
    with pytest.raises(ActionError):
        engine.step(torch.zeros(3, 1))


# ---------------------------------------------------------------------- cart-pole, grads, views
def test_cartpole_unforced_conserves_energy_and_reward_matches_dmc_formula():
    """With zero force the rigid-body cart-pole keeps its energy (semi-implicit Euler:
    bounded oscillation); a wrong sign in the equations of motion would not."""
    engine = _engine("CartpoleSwingup-v0", 1)
    engine.set_state(torch.tensor([0.0, 2.0, 0.3, 1.0, 0.0], dtype=F64))
    m, big_m, h, g = 0.1, 1.0, 0.5, 9.81

    def energy() -> float:
        x, th, xd, thd = engine.physics[0].tolist()
        vx, vy = xd + h * np.cos(th) * thd, -h * np.sin(th) * thd
        kinetic = 0.5 * big_m * xd**2 + 0.5 * m * (vx**2 + vy**2) + 0.5 * m * h**2 / 3 * thd**2
        return kinetic + m * g * h * np.cos(th)

    start = energy()
    for _ in range(300):
        engine.step(torch.zeros(1, 1, dtype=F64))
        assert abs(energy() - start) < 0.02  # scale: m g h = 0.49
    # DMC's smooth reward: 1 upright, centred, still, no force; 0 hanging down
    engine.set_state(torch.zeros(5, dtype=F64))
    assert float(engine.step(torch.zeros(1, 1, dtype=F64))[1]) == pytest.approx(1.0, abs=1e-3)
    engine.set_state(torch.tensor([0.0, np.pi, 0.0, 0.0, 0.0], dtype=F64))
    assert float(engine.step(torch.ones(1, 1, dtype=F64))[1]) < 1e-3


def test_requires_grad_engine_keeps_the_graph_through_steps_until_detached():
    engine = _engine("Pendulum-v1", 4, requires_grad=True)
    engine.reset()
    actions = torch.zeros(3, 4, 1, dtype=F64, requires_grad=True)
    total = sum(engine.step(actions[t])[1].sum() for t in range(3))
    (grad,) = torch.autograd.grad(total, actions)
    assert grad[0].abs().sum() > 0  # the first action moves the later rewards
    engine.detach_state()
    assert not engine.physics.requires_grad


def test_gymnasium_and_sb3_views_of_a_torch_engine():
    engine = make_engine("PointMaze-UMaze-Goal-v0", 4, backend="torch", seed=0)
    vec = engine.as_gymnasium_vector()
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (4, 8) and isinstance(obs, np.ndarray)
    obs, rew, term, trunc, _ = vec.step(np.zeros((4, 2), dtype=np.float32))
    assert rew.shape == (4,) and term.dtype == bool
    sb3 = make_engine("Pendulum-v1", 3, backend="torch", seed=0).as_sb3_vec_env()
    assert sb3.reset().shape == (3, 3)
    sb3.step_async(np.zeros((3, 1), dtype=np.float32))
    assert sb3.step_wait()[1].shape == (3,)


@pytest.mark.slow  # ~25 s: Inductor compiles the fused step
def test_compiled_engine_matches_eager_reference():
    pair = [
        make_engine(
            "PointMaze-Deceptive-Dense-v0", 8, backend="torch", seed=1, dtype=F64, compile=c
        )
        for c in (True, False)
    ]
    for engine in pair:
        engine.reset()
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        act = torch.rand(8, 2, generator=gen, dtype=F64) * 2 - 1
        outs = [engine.step(act) for engine in pair]
        for a, b in zip(outs[0][:4], outs[1][:4], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(pair[0].get_state(), pair[1].get_state(), rtol=1e-9, atol=1e-9)
