"""Pixel observations: frames equal dm_control's and Gymnasium's own render of the same
state (same GL backend, so exactly equal), frame stacks across autoreset, ``set_state``
and rollouts, image spaces in the views, and one-line errors for bad options."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch

from rlwb.agent import StepAgent
from rlwb.engine import EngineSpec, make_engine, state_from_mujoco
from rlwb.errors import ConfigError

SIZE = 84


def _frame(obs: torch.Tensor, member: int = 0, index: int = -1) -> np.ndarray:
    """Frame ``index`` of a member's stack as ``[H, W, 3]``."""
    channels = obs[member].shape[0]
    start = (index % (channels // 3)) * 3
    return obs[member, start : start + 3].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("task_id", ["cheetah-run", "reacher-easy"])
def test_frames_equal_dm_control_render(task_id: str) -> None:
    from dm_control import suite

    domain, task = task_id.split("-")
    env = suite.load(domain, task, task_kwargs={"random": 3})
    env.reset()
    rng = np.random.default_rng(0)
    spec = env.action_spec()
    for _ in range(5):
        env.step(rng.uniform(spec.minimum, spec.maximum))
    engine = make_engine(task_id, 1, backend="mujoco", observation="pixels", frame_stack=2)
    try:
        state = np.r_[engine.task.state_from_dm_control(env.physics), 0]
        obs = engine.set_state(torch.from_numpy(state))
        expected = env.physics.render(SIZE, SIZE, camera_id=0)
        assert obs.dtype == torch.uint8 and obs.shape == (1, 6, SIZE, SIZE)
        assert np.array_equal(_frame(obs), expected)
        assert np.array_equal(_frame(obs, index=0), expected)  # a loaded stack is refilled
    finally:
        engine.close()


def test_frames_equal_gymnasium_rgb_array() -> None:
    env = gym.make("Hopper-v5", render_mode="rgb_array", width=SIZE, height=SIZE)
    base = env.unwrapped
    env.reset(seed=0)
    base.set_state(base.init_qpos, base.init_qvel)
    env.render()  # Gymnasium aims its camera at the pose of its first render
    rng = np.random.default_rng(1)
    for _ in range(10):
        env.step(rng.uniform(-1, 1, 3))
    base.set_state(base.data.qpos.copy(), base.data.qvel.copy())
    expected = env.render()
    engine = make_engine("Hopper-v5", 1, backend="mujoco", observation="pixels")
    try:
        obs = engine.set_state(state_from_mujoco(base.model, base.data))
        assert np.array_equal(_frame(obs), expected)
    finally:
        engine.close()
        env.close()


def test_gym_backend_renders_through_the_envs_own_render() -> None:
    gym_engine = make_engine("cheetah-run", 1, backend="gym", seed=0, observation="pixels")
    engine = make_engine("cheetah-run", 1, backend="mujoco", observation="pixels")
    try:
        gym_engine.reset()
        obs = gym_engine.step(torch.ones(1, 6))[0]
        assert obs.shape == (1, 9, SIZE, SIZE) and obs.dtype == torch.uint8
        physics = gym_engine._pool.envs[0].unwrapped._env.physics  # shimmy's dm_control env
        state = np.r_[engine.task.state_from_dm_control(physics), 0]
        assert np.array_equal(_frame(engine.set_state(torch.from_numpy(state))), _frame(obs))
    finally:
        gym_engine.close()
        engine.close()


def test_frame_stack_across_steps_and_autoreset() -> None:
    engine = make_engine("cartpole-swingup", 2, backend="mujoco", seed=0, observation="pixels",
                         image_size=32, max_episode_steps=3)  # fmt: skip
    try:
        obs = engine.reset()
        assert obs.shape == (2, 9, 32, 32)
        assert torch.equal(obs[:, :3], obs[:, 3:6]) and torch.equal(obs[:, :3], obs[:, 6:])
        push = torch.ones(2, 1)
        for _ in range(3):
            new, _, _, truncated, info = engine.step(push)
            assert torch.equal(info["final_obs"][:, :6], obs[:, 3:])  # the oldest frame drops
            assert not torch.equal(info["final_obs"][:, 6:], obs[:, 6:])  # the cart moved
            obs = new
        assert bool(truncated.all())
        assert torch.equal(obs[:, :3], obs[:, 6:])  # autoreset: a fresh stack ...
        assert not torch.equal(obs[:, 6:], info["final_obs"][:, 6:])  # ... of the new episode
    finally:
        engine.close()


def test_set_state_rerenders_and_refills_the_stack() -> None:
    engine = make_engine("cartpole-swingup", 1, backend="mujoco", seed=1, observation="both",
                         image_size=32)  # fmt: skip
    try:
        engine.reset()
        for _ in range(2):
            obs, *_, info = engine.step(torch.ones(1, 1))
        state = engine.get_state()
        other = make_engine("cartpole-swingup", 1, backend="mujoco", seed=9,
                            observation="both", image_size=32)  # fmt: skip
        try:
            other.reset()
            loaded = other.set_state(state)
            for k in range(3):
                assert np.array_equal(_frame(loaded, index=k), _frame(obs))
            assert torch.allclose(other.state_obs, info["state"])
            other.load_state_dict(engine.state_dict())  # a checkpoint keeps the stacks
            assert torch.equal(other.step(torch.ones(1, 1))[0], engine.step(torch.ones(1, 1))[0])
        finally:
            other.close()
        # a rollout leaves the stacks (and states) exactly as they were
        before = engine.step(torch.zeros(1, 1))[0]
        result = engine.rollout(torch.ones(1, 4, 1), record_obs=True)
        assert result.observations.shape == (1, 5, 9, 32, 32)
        assert torch.equal(result.observations[:, 0], before)
        after = engine.step(torch.zeros(1, 1))[0]
        assert torch.equal(after[:, :6], before[:, 3:])
    finally:
        engine.close()


def test_views_have_image_spaces() -> None:
    engine = make_engine("cartpole-balance", 2, backend="mujoco", seed=0, observation="pixels",
                         image_size=16, frame_stack=2, max_episode_steps=1)  # fmt: skip
    try:
        vec = engine.as_gymnasium_vector()
        box = gym.spaces.Box(0, 255, (6, 16, 16), np.uint8)
        assert vec.single_observation_space == box
        obs, _ = vec.reset(seed=0)
        obs, _, _, truncated, infos = vec.step(np.zeros((2, 1), np.float32))
        assert obs.dtype == np.uint8 and vec.observation_space.contains(obs)
        assert truncated.all() and infos["final_obs"][0].shape == (6, 16, 16)
        sb3 = engine.as_sb3_vec_env()
        assert sb3.observation_space == box
        sb3.reset()
        obs, _, done, infos = sb3.step(np.zeros((2, 1), np.float32))
        assert obs.dtype == np.uint8 and done.all()
        assert infos[0]["terminal_observation"].dtype == np.uint8
        assert engine.spec.observation_shape == (6, 16, 16)
        assert engine.spec.observation_dtype == torch.uint8
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("task_id", "kwargs", "words"),
    [
        ("cheetah-run", {"observation": "rgb"}, "observation must be one of"),
        ("cheetah-run", {"observation": "pixels", "frame_stack": 0}, "frame_stack"),
        ("cheetah-run", {"image_size": 64}, "apply to observation='pixels'"),
        ("cheetah-run", {"observation": "pixels", "camera": "nope"}, "camera 'nope'"),
        ("cheetah-run", {"observation": "pixels", "image_size": 4096}, "offscreen buffer"),
        ("Pendulum-v1", {"observation": "pixels", "backend": "torch"}, "backend 'torch'"),
        ("Pendulum-v1", {"observation": "pixels", "backend": "gym"}, "MuJoCo or dm_control"),
        ("cheetah-run", {"observation": "pixels", "backend": "warp"}, "backend='mujoco'"),
    ],
)
def test_bad_pixel_options_are_one_line(task_id: str, kwargs: dict, words: str) -> None:
    kwargs = {"backend": "mujoco", **kwargs}
    with pytest.raises(ConfigError) as err:
        make_engine(task_id, 1, **kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_model_cameras_by_name_and_id() -> None:
    engine = make_engine("cheetah-run", 1, backend="mujoco", observation="pixels",
                         image_size=24, camera="back")  # fmt: skip
    by_id = make_engine("cheetah-run", 1, backend="mujoco", observation="pixels",
                        image_size=24, camera=1)  # fmt: skip
    try:
        model = engine.model
        assert mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "back") == 1
        assert torch.equal(engine.reset(seed=0), by_id.reset(seed=0))
    finally:
        engine.close()
        by_id.close()


def test_observation_frames_reach_tensorboard(tmp_path) -> None:  # noqa: ANN001
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rlwb.logger import OBSERVATION_TAG, RunLogger, log_observation_frames

    engine = make_engine("cartpole-swingup", 2, backend="mujoco", seed=0, observation="pixels",
                         image_size=16)  # fmt: skip
    try:
        engine.reset()
        obs = engine.step(torch.ones(2, 1))[0]
    finally:
        engine.close()
    logger = RunLogger(tmp_path, 10, progress=False)
    assert log_observation_frames(logger, obs)
    assert not log_observation_frames(logger, torch.zeros(2, 5))  # state vectors: nothing
    logger.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    (image,) = events.Images(OBSERVATION_TAG)
    assert (image.width, image.height) == (3 * 16, 2 * 16)  # frames across, members down


def test_video_of_a_pixel_run_shows_what_the_agent_sees(tmp_path) -> None:  # noqa: ANN001
    from types import SimpleNamespace

    from rlwb.video import record_video

    seen = []

    class Watcher:
        spec = SimpleNamespace(backend="mujoco")
        device = torch.device("cpu")
        needs_engine_state = False

        def act(self, obs: torch.Tensor, explore: bool) -> torch.Tensor:
            seen.append(obs.clone())
            return torch.ones(len(obs), 1)

    options = {"observation": "pixels", "image_size": 16, "max_episode_steps": 3}
    frames, fps = record_video(Watcher(), "cartpole-swingup", tmp_path / "v.gif",
                               task_kwargs=options)  # fmt: skip
    assert len(frames) == 4 and frames[0].shape == (16, 16, 3) and fps == 100
    assert all(obs.shape == (1, 9, 16, 16) and obs.dtype == torch.uint8 for obs in seen)
    assert np.array_equal(frames[1], _frame(seen[1]))  # the newest frame the agent saw
    assert (tmp_path / "v.gif").stat().st_size > 0


@dataclasses.dataclass
class _NoConfig:
    pass


class _Brightness(StepAgent):
    """Pushes by the mean brightness of what it sees; records the observations' dtypes."""

    seen: ClassVar[list[torch.dtype]] = []

    def __init__(self, config: _NoConfig, spec: EngineSpec, device: torch.device) -> None:
        self.spec, self.device = spec, device

    def act(self, obs: torch.Tensor, explore: bool = False) -> torch.Tensor:
        self.seen.append(obs.dtype)
        level = obs.float().mean(dim=(1, 2, 3)) / 127.5 - 1
        return level[:, None].expand(-1, self.spec.action_dim).clone()

    def observe(self, obs, action, reward, next_obs, terminated, truncated) -> None:  # noqa: ANN001
        self.seen.append(next_obs.dtype)

    def update(self, num_updates: int) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def test_a_pixel_run_shows_frames_and_resumes_on_images(tmp_path) -> None:  # noqa: ANN001
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rlwb.logger import OBSERVATION_TAG
    from rlwb.train import TrainConfig, train

    options = {"observation": "pixels", "image_size": 16, "max_episode_steps": 4}
    cfg = TrainConfig(task="cartpole-balance", backend="mujoco", num_envs=2, task_kwargs=options,
                      total_steps=4, learning_starts=1, eval_every=0, checkpoint_every=2,
                      eval_episodes=1, keep_checkpoints=5, run_dir=str(tmp_path), run_name="r",
                      progress=False)  # fmt: skip
    train(_Brightness, _NoConfig(), cfg)
    events = EventAccumulator(str(tmp_path / "r"), size_guidance={"images": 0})
    events.Reload()
    (image,) = events.Images(OBSERVATION_TAG)
    assert (image.width, image.height) == (3 * 16, 2 * 16)
    _Brightness.seen.clear()
    checkpoint = tmp_path / "r" / "checkpoints" / "step_000000000002.pt"
    train(_Brightness, _NoConfig(), cfg, resume=str(checkpoint))
    assert _Brightness.seen and set(_Brightness.seen) == {torch.uint8}


def _pixel_frames(engine, steps: int) -> list[torch.Tensor]:  # noqa: ANN001
    """The observations of a seeded random-action run of ``engine``."""
    generator = torch.Generator().manual_seed(0)
    frames = [engine.reset().clone()]
    for _ in range(steps):
        action = torch.rand(engine.num_envs, engine.action_dim, generator=generator) * 2 - 1
        frames.append(engine.step(action)[0].clone())
    return frames


def check_forked_rendering() -> None:
    """(Run in a fresh interpreter by the test below.) A process that already holds a
    context forks render workers; their frames equal those rendered on threads, with 4
    members (state rows staged in shared memory) and 16 (simulation workers: shared rows)."""
    from rlwb.engine import pixels

    single = make_engine("cheetah-run", 1, backend="mujoco", observation="pixels")
    single.reset()  # this process now holds a GL context of its own
    options = dict(backend="mujoco", observation="pixels", frame_stack=2, seed=0, num_threads=2)
    frames = {}
    for members in (4, 16):
        forked = make_engine("cheetah-run", members, **options)
        try:
            why = (pixels.render_workers_allowed(), pixels._contexts)
            assert forked._render_workers is not None and forked._render_workers.pids, why
            assert (forked._render_states is forked._state) == (forked._workers is not None)
            frames[members] = _pixel_frames(forked, 6)
        finally:
            forked.close()
    pixels._contexts = {"made": True, "forkable": False}  # e.g. a GPU driver's context
    assert not pixels.render_workers_allowed()[0]
    for members in (4, 16):
        threaded = make_engine("cheetah-run", members, **options)
        try:
            assert threaded._render_workers is None  # so: threads
            for a, b in zip(frames[members], _pixel_frames(threaded, 6), strict=True):
                assert torch.equal(a, b)
        finally:
            threaded.close()
    single.close()


def test_members_render_in_forked_workers_with_the_threads_frames() -> None:
    """Mesa's software rasterizer runs one context of a process at a time, so members
    render in forked workers (one core each). Checked in a fresh interpreter: whether this
    process may fork them depends on every context earlier tests made in it (one whose
    driver cannot be identified turns forking off, and the engine renders on threads)."""
    import subprocess
    import sys

    from rlwb.engine import mujoco_workers
    from tests.helpers import ROOT

    if not mujoco_workers.process_workers_available()[0]:
        pytest.skip("no fork here")
    code = "from tests.test_pixels import check_forked_rendering; check_forked_rendering()"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
