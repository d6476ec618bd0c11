"""Agents on image observations: the encoder follows the observation space (no flag), the
authors' / paper's pixel networks, random-shift augmentation, and update and act of pixel
TD-MPC and DDPG on CPU with frame-once replay."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from rlwb.agents.ddpg import DDPG, DDPGConfig
from rlwb.agents.tdmpc.agent import TDMPC, TDMPCConfig
from rlwb.nn import ConvEncoder, ConvSpec, RandomShift, encoder_for
from rlwb.replay import TrajectoryBuffer
from tests.helpers import toy_spec

SIDE = 48  # the smallest round size TD-MPC's four stride-2 convs take comfortably


def image_spec(side: int = SIDE, stack: int = 3, members: int = 2):
    return dataclasses.replace(
        toy_spec(act_dim=1, num_envs=members),
        observation_shape=(3 * stack, side, side),
        task_kwargs={"observation": "pixels", "frame_stack": stack},
    )


def _feed(agent, steps: int, seed: int = 0) -> torch.Tensor:
    """Image transitions with frame stacks built as an engine does (newest frame last);
    episodes of 6 steps. Returns the last observation."""
    g = torch.Generator().manual_seed(seed)
    spec = agent.spec
    b, (c, h, w) = spec.num_envs, spec.observation_shape

    def frame() -> torch.Tensor:
        return torch.randint(0, 256, (b, 3, h, w), generator=g, dtype=torch.uint8)

    obs = torch.cat([frame()] * (c // 3), 1)
    for t in range(steps):
        action = agent.act(obs, explore=True)
        nxt = torch.cat([obs[:, 3:], frame()], 1)
        end = torch.full((b,), t % 6 == 5)
        agent.observe(obs, action, torch.randn(b, generator=g), nxt, torch.zeros_like(end), end)
        obs = torch.where(end[:, None, None, None], torch.cat([frame()] * (c // 3), 1), nxt)
    return obs


def test_encoders_follow_the_observation_space():
    conv = ConvSpec((32,) * 4, (7, 5, 3, 3), (2, 2, 2, 2), 50)
    flat, width = encoder_for((17,), conv, lambda d: nn.Sequential(nn.Linear(d, 8)))
    assert isinstance(flat, nn.Sequential) and width == 8
    image, width = encoder_for((9, 84, 84), conv)
    assert isinstance(image, ConvEncoder) and width == 50
    assert image.conv_dim == 32 * 3 * 3  # 84 -> 39 -> 18 -> 8 -> 3
    out = image(torch.zeros(4, 5, 9, 84, 84, dtype=torch.uint8))  # any leading dimensions
    assert out.shape == (4, 5, 50)

    state_agent = TDMPC(TDMPCConfig.small(), toy_spec(), "cpu")
    assert not any(isinstance(m, nn.Conv2d) for m in state_agent.model.modules())
    agent = TDMPC(TDMPCConfig.small(latent_dim=20), image_spec(84), "cpu")
    convs = [m for m in agent.model.encoder.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0]) for m in convs] == [
        (9, 32, 7, 2), (32, 32, 5, 2), (32, 32, 3, 2), (32, 32, 3, 2)
    ]  # fmt: skip
    assert agent.model.encoder.out_dim == 20 and agent.shift.pad == 4  # int(84 / 21)

    ddpg = DDPG(DDPGConfig.pixels(), image_spec(64), "cpu")
    for net in (ddpg.actor, ddpg.critic):
        convs = [m for m in net.encoder.modules() if isinstance(m, nn.Conv2d)]
        assert [m.out_channels for m in convs] == [32, 32, 32]
    widths = [m.out_features for m in ddpg.actor.net.modules() if isinstance(m, nn.Linear)]
    assert widths == [200, 200, 1]
    critic_in = [m for m in ddpg.critic.head.modules() if isinstance(m, nn.Linear)][0]
    assert critic_in.in_features == ddpg.critic.encoder.out_dim + 1  # action at the first FC
    assert ddpg.actor.encoder is not ddpg.critic.encoder


def test_images_too_small_or_odd_are_one_line_errors():
    from rlwb.errors import ConfigError

    with pytest.raises(ConfigError, match="too small"):
        TDMPC(TDMPCConfig.small(), image_spec(24), "cpu")
    with pytest.raises(ConfigError, match="conv layers need as many"):
        DDPGConfig(conv_channels=(32, 32), conv_kernels=(3,), conv_strides=(2,))


def test_random_shift_keeps_shapes_and_shifts_by_at_most_pad():
    pad, side = 4, 20
    base = torch.arange(side * side, dtype=torch.int64).reshape(1, 1, side, side)
    images = base.expand(64, 3, side, side).to(torch.int16).clone()
    gen = torch.Generator().manual_seed(0)
    out = RandomShift(pad)(images, gen)
    assert out.shape == images.shape and out.dtype == images.dtype
    seen = set()
    for img in out:
        # the pixel at the centre came from (r, c): the shift, identical over the image
        src = int(img[0, side // 2, side // 2])
        dy, dx = src // side - side // 2, src % side - side // 2
        assert abs(dy) <= pad and abs(dx) <= pad
        rows = (torch.arange(side) + dy).clamp(0, side - 1)
        cols = (torch.arange(side) + dx).clamp(0, side - 1)
        expected = base[0, 0][rows][:, cols]
        assert torch.equal(img[1], expected.to(img.dtype))  # border repeated, all channels alike
        seen.add((dy, dx))
    assert len(seen) > 20  # independent shifts per image
    assert torch.equal(RandomShift(0)(images), images)
    windows = torch.zeros(2, 5, 9, side, side, dtype=torch.uint8)
    assert RandomShift(pad)(windows).shape == windows.shape


def test_pixel_tdmpc_updates_and_acts_on_cpu():
    cfg = TDMPCConfig.small(batch_size=8, samples=16, elites=4, iterations=2, horizon=3,
                            latent_dim=16, mlp_dim=32, num_channels=8, seed=0)  # fmt: skip
    agent = TDMPC(cfg, image_spec(), "cpu")
    obs = _feed(agent, 14)
    replay = agent.replay
    assert isinstance(replay, TrajectoryBuffer) and replay.store is not None
    assert "obs" not in replay.data  # frames, not stacks, are stored
    before = [p.detach().clone() for p in agent.model.encoder.parameters()]
    out = agent.update(2)
    losses = torch.stack([v for k, v in out.items() if k != "num_updates"])
    assert out["num_updates"] > 2 and torch.isfinite(losses).all()  # the seed catch-up ran
    assert any(
        not torch.equal(a, p) for a, p in zip(before, agent.model.encoder.parameters(), strict=True)
    )
    action = agent.act(obs)
    assert action.shape == (2, 1) and (action.abs() <= 2).all()
    again = TDMPC(cfg, image_spec(), "cpu")
    again.load_state_dict(agent.state_dict())
    assert torch.equal(again.replay.sample(4)["obs"], agent.replay.sample(4)["obs"])


def test_pixel_ddpg_updates_and_acts_on_cpu():
    cfg = DDPGConfig.pixels(conv_channels=(8, 8, 8), hidden=(32, 32), batch_size=4, seed=0)
    agent = DDPG(cfg, image_spec(32), "cpu")
    obs = _feed(agent, 10)
    assert isinstance(agent.replay, TrajectoryBuffer)
    before = [p.detach().clone() for p in agent.critic.encoder.parameters()]
    out = agent.update(3)
    assert torch.isfinite(out["critic_loss"]) and torch.isfinite(out["actor_loss"])
    assert any(
        not torch.equal(a, p)
        for a, p in zip(before, agent.critic.encoder.parameters(), strict=True)
    )
    action = agent.act(obs, explore=True)
    assert action.shape == (2, 1) and (action.abs() <= 2).all()
    again = DDPG(cfg, image_spec(32), "cpu")
    again.load_state_dict(agent.state_dict())
    assert torch.equal(again.act(obs), agent.act(obs))


def _experiment_config(module, *argv: str):
    """An experiment's resolved config for a command line, as ``rlwb train`` builds it."""
    from rlwb.config import parse_cli
    from rlwb.train import budget_as_given, explicit_fields, resolve_budget

    cls = module.config_for(*module.cli_choice(argv)) if hasattr(module, "cli_choice") else None
    cls = cls or module.Config
    parsed = parse_cli(cls, list(argv))
    config = cls(train=parsed.train, agent=parsed.agent)
    return resolve_budget(budget_as_given(config.train, explicit_fields(argv))), config.agent


def test_tdmpc_dmc_takes_the_authors_pixel_settings_when_observation_is_pixels():
    from rlwb.experiments import tdmpc_dmc

    argv = ["--train.task", "cartpole-swingup", "--train.task-kwargs", "observation", "pixels"]
    train, agent = _experiment_config(tdmpc_dmc, *argv)
    assert train.task_kwargs == {
        "action_repeat": 8, "observation": "pixels", "image_size": 84, "frame_stack": 3,
    }  # fmt: skip
    assert train.total_env_steps == 100_000 and train.total_steps == 12_500
    assert (agent.iterations, agent.num_channels, agent.shift_pad) == (8, 32, -1)
    argv = [*argv, "image_size", "64", "--agent.iterations", "4"]
    train, agent = _experiment_config(tdmpc_dmc, *argv)
    assert train.task_kwargs["image_size"] == 64 and agent.iterations == 4
    state, agent = _experiment_config(tdmpc_dmc, "--train.task", "cartpole-swingup")
    assert state.task_kwargs == {"action_repeat": 8} and state.total_env_steps == 500_000
    assert agent.iterations == 6


def test_ddpg_pixels_is_the_papers_setting():
    from rlwb.experiments import ddpg_pixels

    train, agent = _experiment_config(ddpg_pixels, "--train.total-env-steps", "30000")
    assert train.task == "cartpole-swingup"
    assert train.task_kwargs == {
        "observation": "pixels", "image_size": 64, "frame_stack": 3, "action_repeat": 3,
    }  # fmt: skip
    assert train.total_steps == 10_000
    assert agent.hidden == (200, 200) and agent.conv_channels == (32, 32, 32)
    assert (agent.batch_size, agent.final_init, agent.critic_action_layer) == (16, 3e-4, 0)


def test_pixel_policies_export_and_match_act(tmp_path):
    """``rlwb export`` of a pixel DDPG: the network takes the float32 of uint8 frames, and
    the written file acts as ``agent.act``."""
    from rlwb.export import export_agent

    cfg = DDPGConfig.pixels(conv_channels=(8, 8, 8), hidden=(32, 32))
    result = export_agent(DDPG(cfg, image_spec(32), "cpu"), tmp_path / "policy.pt")
    assert result.observation_shape == (9, 32, 32) and result.act_diff < 1e-6
    tdmpc = TDMPC(TDMPCConfig.small(num_channels=8, latent_dim=16), image_spec(), "cpu")
    assert export_agent(tdmpc, tmp_path / "tdmpc.pt").max_abs_diff < 1e-4


def test_a_pixel_run_checkpoints_evaluates_exports_and_records_video(tmp_path):
    """A few steps of pixel DDPG on DMC cartpole through the runner: its checkpoint and
    ``policy.pt`` evaluate to the run's own evaluation, the video shows what the agent saw,
    and the policy exports."""
    import imageio.v2 as imageio

    from rlwb.evaluate import evaluate
    from rlwb.export import export_policy
    from rlwb.train import TrainConfig, train

    kw = {"observation": "pixels", "image_size": 32, "frame_stack": 3, "action_repeat": 8,
          "max_episode_steps": 6}  # fmt: skip
    cfg = TrainConfig(
        task="cartpole-balance", backend="mujoco", task_kwargs=kw, total_steps=12,
        learning_starts=6, eval_every=0, eval_episodes=1, checkpoint_every=12, video=True,
        run_dir=str(tmp_path), progress=False,
    )  # fmt: skip
    agent = DDPGConfig.pixels(conv_channels=(8, 8, 8), hidden=(32, 32), batch_size=4, seed=0)
    result = train(DDPG, agent, cfg)
    checkpoint = torch.load(result.checkpoint, weights_only=True)
    assert checkpoint["agent"]["replay"]["frames"]["frames"].dtype == torch.uint8
    for path in (result.checkpoint, result.run_dir / "policy.pt"):
        mean, _, _ = evaluate(path, episodes=None)
        assert mean == pytest.approx(result.eval_mean, abs=1e-4)
    videos = list((result.run_dir / "videos").glob("*.mp4"))
    assert len(videos) == 1
    frames = imageio.mimread(videos[0])
    assert len(frames) == 7 and frames[0].shape[:2] == (32, 32)  # reset + 6 engine steps
    assert export_policy(result.run_dir, tmp_path / "policy.pt").observation_shape == (9, 32, 32)
