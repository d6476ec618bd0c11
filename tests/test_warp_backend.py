"""The ``warp`` backend (MuJoCo Warp) on Warp's CPU device: parity with the ``mujoco``
backend and with Gymnasium, state cloning, masked autoreset, and the batched open-loop
rollout against the base class's step-by-step loop.

Tolerances. Warp simulates in float32, the oracles in float64. After a reset both hold the
same float64 draw rounded to float32 (|diff| <= 1e-7 |q|). Each MuJoCo step then adds
float32 rounding (eps 6e-8) amplified by the constraint solver, which stops at its
tolerance; over the <= 5 env steps compared here (20-25 MuJoCo steps) we measured at most
3e-4 on observations (velocities of order 10) and 1e-5 on rewards. We assert 10x that
(observations ``atol 2e-3 + rtol 1e-3``, rewards ``atol 1e-4``). A wrong frame_skip, a
dropped action or a missed reset shows up at 1e-2 or more.

Warp compiles its kernels on first use (~30 s cold on this machine, cached on disk
afterwards), so every engine here is module-scoped and small.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlwb.engine import backend_status, make_engine
from rlwb.engine.base import Engine
from rlwb.errors import BackendUnavailableError, ConfigError

pytest.importorskip("mujoco_warp")

OBS_ATOL, OBS_RTOL, REW_ATOL = 2e-3, 1e-3, 1e-4
B = 4


def _actions(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1


def _close(a: torch.Tensor, b: torch.Tensor, atol: float, rtol: float = 0.0) -> None:
    torch.testing.assert_close(a.double(), b.double(), atol=atol, rtol=rtol)


@pytest.fixture(scope="module")
def cheetah() -> Engine:
    engine = make_engine(
        "HalfCheetah-v5", B, backend="warp", device="cpu", seed=3, dtype=torch.float64
    )
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def cheetah_ref() -> Engine:
    engine = make_engine("HalfCheetah-v5", B, backend="mujoco", seed=3, dtype=torch.float64)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def hopper() -> Engine:
    engine = make_engine("Hopper-v5", B, backend="warp", device="cpu", seed=5, dtype=torch.float64)
    yield engine
    engine.close()


# ---------------------------------------------------------------------- availability
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA messages")
def test_availability_without_cuda() -> None:
    ok, why = backend_status("warp")
    assert not ok and "no CUDA device" in why and "device='cpu'" in why
    assert backend_status("warp", "cpu") == (True, "")
    ok, why = backend_status("warp", "cpu", auto=True)
    assert not ok and "auto" in why
    with make_engine("HalfCheetah-v5", 2, device="cpu") as engine:  # auto never picks Warp on CPU
        assert engine.backend == "mujoco"
    with pytest.raises(BackendUnavailableError, match="no CUDA device"):
        make_engine("HalfCheetah-v5", 2, backend="warp")


def test_unsupported_model_and_bad_options_are_named() -> None:
    with pytest.raises(BackendUnavailableError, match="does not run on backend 'warp'"):
        make_engine("Humanoid-v5", 2, backend="warp", device="cpu")  # PGS solver: CPU only
    from rlwb.engine.warp_backend import WarpEngine

    with pytest.raises(BackendUnavailableError, match="PGS.*backend='mujoco'"):
        WarpEngine("HumanoidStandup-v5", 2, device="cpu")
    with pytest.warns(UserWarning, match="RK4"):  # Ant: free joint + RK4 (see warp_backend)
        make_engine("Ant-v5", 1, backend="warp", device="cpu").close()
    with pytest.raises(ConfigError, match="nconmax"):
        make_engine("HalfCheetah-v5", 2, backend="warp", device="cpu", nconmax=0)
    with pytest.raises(BackendUnavailableError, match="CUDA or the CPU"):
        make_engine("HalfCheetah-v5", 2, backend="warp", device="meta")


# ---------------------------------------------------------------------- parity
def test_reset_and_steps_match_mujoco_backend(cheetah: Engine, cheetah_ref: Engine) -> None:
    """Same seed, same generator device (CPU) -> same reset draw; same actions -> same
    observations, rewards and reward components up to float32 physics."""
    assert cheetah.generator.device == cheetah.device
    obs, ref = cheetah.reset(seed=11), cheetah_ref.reset(seed=11)
    _close(obs, ref, atol=1e-6)
    assert cheetah.state_dim == cheetah_ref.state_dim
    for t, action in enumerate(_actions((5, B, 6), seed=1)):
        obs, reward, term, trunc, info = cheetah.step(action)
        ref, ref_reward, ref_term, ref_trunc, ref_info = cheetah_ref.step(action)
        _close(obs, ref, OBS_ATOL, OBS_RTOL)
        _close(reward, ref_reward, REW_ATOL)
        assert not term.any() and not trunc.any(), t
        for key in ("x_velocity", "reward_forward", "reward_ctrl"):
            _close(info[key], ref_info[key], REW_ATOL)


def test_one_step_from_shared_state_matches(cheetah: Engine, cheetah_ref: Engine) -> None:
    """States are interchangeable between the backends (same layout): load the CPU
    backend's state into Warp, step both once, compare."""
    cheetah_ref.reset(seed=2)
    cheetah_ref.step(_actions((B, 6), seed=2))
    state = cheetah_ref.get_state()
    _close(cheetah.set_state(state), cheetah_ref.set_state(state), atol=1e-5, rtol=1e-6)
    action = _actions((B, 6), seed=3)
    obs, reward, *_ = cheetah.step(action)
    ref, ref_reward, *_ = cheetah_ref.step(action)
    _close(obs, ref, OBS_ATOL, OBS_RTOL)
    _close(reward, ref_reward, REW_ATOL)


def _sync_gym(env: gym.Env, engine: Engine, member: int) -> None:
    state = engine.get_state()[member].numpy()
    nq, nv = env.unwrapped.model.nq, env.unwrapped.model.nv
    env.reset(seed=0)
    env.unwrapped.set_state(state[1 : 1 + nq].copy(), state[1 + nq : 1 + nq + nv].copy())


@pytest.mark.parametrize("fixture", ["cheetah", "hopper"])
def test_matches_gymnasium(fixture: str, request: pytest.FixtureRequest) -> None:
    engine: Engine = request.getfixturevalue(fixture)
    env = gym.make(engine.task_id)
    try:
        engine.reset(seed=7)
        _sync_gym(env, engine, member=1)
        for action in _actions((4, B, engine.action_dim), seed=4):
            obs, reward, term, _, info = engine.step(action)
            g_obs, g_reward, g_term, _, g_info = env.step(action[1].numpy())
            _close(obs[1], torch.from_numpy(g_obs), OBS_ATOL, OBS_RTOL)
            _close(reward[1], torch.tensor(g_reward), REW_ATOL)
            _close(info["x_velocity"][1], torch.tensor(g_info["x_velocity"]), REW_ATOL)
            assert bool(term[1]) == g_term
    finally:
        env.close()


def test_hopper_termination_matches_gymnasium(hopper: Engine) -> None:
    """Members pushed towards unhealthy states terminate at the step Gymnasium's do, and
    autoreset to a fresh healthy state; the others keep going."""
    hopper.reset(seed=1)
    state = hopper.get_state()
    nq = hopper.model.nq
    state[0, 1 + 2], state[0, 1 + nq + 2] = 0.15, 3.0  # torso angle near the limit 0.2 ...
    state[2, 1 + 2], state[2, 1 + nq + 2] = -0.17, -2.0  # ... and turning towards it
    actions = _actions((4, B, 3), seed=9) * 0.1
    env = gym.make("Hopper-v5")
    expected = {}
    try:
        for member in (0, 2):
            env.reset(seed=0)
            row = state[member].numpy()
            env.unwrapped.set_state(
                row[1 : 1 + nq].copy(), row[1 + nq : 1 + nq + hopper.model.nv].copy()
            )
            ends = [t for t, a in enumerate(actions) if env.step(a[member].numpy())[2]]
            assert ends, "the test state should terminate in Gymnasium within 4 steps"
            expected[member] = ends[0]
    finally:
        env.close()
    hopper.set_state(state)
    for t, action in enumerate(actions):
        obs, _, term, trunc, info = hopper.step(action)
        assert term.tolist() == [expected.get(m) == t for m in range(B)], t
        assert not trunc.any()
        for member in (m for m, end in expected.items() if end == t):
            assert hopper.elapsed[member] == 0
            z, angle = info["final_obs"][member, :2].tolist()  # obs = [qpos[1:], qvel]
            assert z <= 0.7 or abs(angle) >= 0.2
            assert abs(float(obs[member, 1])) < 0.01  # a fresh reset: torso upright


# ---------------------------------------------------------------------- state and reset
def test_state_cloning_is_exact(cheetah: Engine) -> None:
    cheetah.reset(seed=4)
    cheetah.step(_actions((B, 6), seed=5))
    state = cheetah.get_state()
    actions = _actions((3, B, 6), seed=6)
    first = [cheetah.step(a)[0] for a in actions]
    cheetah.set_state(state)
    second = [cheetah.step(a)[0] for a in actions]
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    # one member's state cloned into every member: identical futures under one action
    cheetah.set_state(state[1])
    obs = cheetah.step(actions[0][1].expand(B, -1))[0]
    assert torch.equal(obs, obs[1].expand(B, -1))


def test_masked_autoreset_leaves_other_members_alone(cheetah: Engine, cheetah_ref: Engine) -> None:
    """Member 2 hits the time limit; the others continue exactly as without the reset
    (the all-worlds ``forward`` of a partial reset must not disturb them)."""
    cheetah.reset(seed=8)
    state = cheetah.get_state()
    limit = cheetah.max_episode_steps
    state[2, -1] = limit - 1
    action = _actions((B, 6), seed=7)
    cheetah.set_state(state)
    obs, _, term, trunc, info = cheetah.step(action)
    assert trunc.tolist() == [False, False, True, False] and not term.any()
    assert cheetah.elapsed.tolist() == [1, 1, 0, 1]
    assert not torch.allclose(obs[2], info["final_obs"][2])
    assert abs(float(obs[2, 8:].abs().max())) < 0.5  # a fresh reset: small velocities
    after_reset = [cheetah.step(a)[0] for a in _actions((2, B, 6), seed=8)]
    state[2, -1] = 0
    cheetah.set_state(state)
    cheetah.step(action)
    undisturbed = [cheetah.step(a)[0] for a in _actions((2, B, 6), seed=8)]
    keep = [0, 1, 3]
    for a, b in zip(after_reset, undisturbed, strict=True):
        assert torch.equal(a[keep], b[keep])


# ---------------------------------------------------------------------- rollout
def _base_rollout(engine: Engine, actions: torch.Tensor, state: torch.Tensor, **kw):
    """The same rollout through the stepping loop (the fast path switched off)."""
    engine._rollout_fast = lambda *args: None
    try:
        return engine.rollout(actions, init_state=state, **kw)
    finally:
        del engine._rollout_fast


def _assert_same_rollout(a, b) -> None:
    for name in ("rewards", "terminated", "truncated", "alive", "returns", "lengths", "final_obs"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for name in ("observations", "actions"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None) and (x is None or torch.equal(x, y)), name
    assert a.infos.keys() == b.infos.keys()
    for key in a.infos:
        assert torch.equal(a.infos[key], b.infos[key]), key


@pytest.mark.parametrize("case", ["terminations", "all_truncate_early"])
def test_batched_open_loop_rollout_equals_base_loop(hopper: Engine, case: str) -> None:
    """The physics-first rollout gives the stepping loop's results bit for bit, and both
    leave the engine as it was before the call."""
    hopper.reset(seed=2)
    state = hopper.get_state()
    horizon = 12
    actions = _actions((B, horizon, 3), seed=10)
    if case == "terminations":
        state[0, 1 + 2] = 0.19
        state[0, 1 + hopper.model.nq + 2] = 3.0
    else:
        state[:, -1] = hopper.max_episode_steps - torch.tensor([3, 5, 2, 4])
    kw = {"record_obs": True, "record_actions": True, "stop_on_truncation": True}
    before = hopper.get_state()
    fast = hopper.rollout(actions, init_state=state, **kw)
    fast_state, fast_view = hopper.get_state(), {k: v.clone() for k, v in hopper.view.items()}
    assert torch.equal(fast_state, before)
    slow = _base_rollout(hopper, actions, state, **kw)
    _assert_same_rollout(fast, slow)
    assert torch.equal(fast_state, hopper.get_state())
    for key, value in fast_view.items():
        assert torch.equal(value, hopper.view[key]), key
    if case == "terminations":
        assert fast.terminated[0].any() and fast.lengths[0] < horizon
    else:
        assert fast.lengths.tolist() == [3, 5, 2, 4] and fast.truncated.any(1).all()


def test_default_dtype_is_float32() -> None:
    with make_engine("HalfCheetah-v5", 2, backend="warp", device="cpu", seed=0) as engine:
        obs = engine.reset()
        assert obs.dtype == torch.float32 and engine.get_state().dtype == torch.float64
        obs, reward, *_ = engine.step(torch.zeros(2, 6))
        assert obs.dtype == reward.dtype == torch.float32
        assert np.isfinite(obs.numpy()).all()


def test_graph_replay_equals_eager_launches(cheetah: Engine) -> None:
    """The captured step and rollout graphs compute exactly what eager launches do."""
    with make_engine(
        "HalfCheetah-v5", B, backend="warp", device="cpu", dtype=torch.float64, graph=False
    ) as eager:
        cheetah.reset(seed=12)
        state = cheetah.get_state()
        eager.set_state(state)
        for action in _actions((3, B, 6), seed=12):
            assert torch.equal(cheetah.step(action)[0], eager.step(action)[0])
        assert cheetah._step_slot.graph is not None and eager._step_slot.graph is None
        actions = _actions((B, 6, 6), seed=13)
        for _ in range(2):  # a horizon's first rollout runs eagerly, the second is captured
            fast = cheetah.rollout(actions, init_state=state)
            slow = eager.rollout(actions, init_state=state)
            assert torch.equal(fast.rewards, slow.rewards)
            assert torch.equal(cheetah.get_state(), eager.get_state())
        assert cheetah._rollout_graphs[6].graph is not None
