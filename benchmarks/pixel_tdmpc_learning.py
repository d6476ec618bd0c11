"""Pixel learning check: the evaluation return of a short run from pixels against the same
agent untrained, on DMC cartpole (balance by default), with the curve.

    python benchmarks/pixel_tdmpc_learning.py               # cartpole-balance, 9,600 env steps
    python benchmarks/pixel_tdmpc_learning.py --task cartpole-swingup --image-size 64
    python benchmarks/pixel_tdmpc_learning.py --task cartpole-swingup --agent ddpg \
        --env-steps 6000 --learning-starts 250 --batch 32   # the slow test's setting
    python benchmarks/pixel_tdmpc_learning.py --task InvertedPendulum-v5 --action-repeat 1 \
        --channels 8 --batch 64 --env-steps 2000 --learning-starts 500 --eval-every 1000
        # the TD-MPC slow test's setting (48 px)
    python benchmarks/pixel_tdmpc_learning.py --smoke       # seconds: that it runs

TD-MPC (the default) is ``TDMPCConfig.small()`` with a conv encoder of ``--channels``
filters, batch ``--batch``, horizon ``--horizon``: the authors' algorithm and encoder
shapes at a size a 2-core CPU can update. ``--agent ddpg`` is ``DDPGConfig.pixels()`` with
three conv layers of ``--channels`` filters and batch ``--batch``. Images are
``--image-size`` square, 3 stacked frames, action repeat ``--action-repeat`` (8: the
authors' cartpole setting), ``--updates-per-step`` updates per agent step. The untrained
agent is evaluated on the run's evaluation seed and episodes. Prints a markdown table (env
steps, evaluation return). ``learning_check(Setting(...))`` is the same check for tests.
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time
from dataclasses import dataclass, fields, replace
from typing import Any

from rlwb.agents.ddpg import DDPG, DDPGConfig
from rlwb.agents.tdmpc.agent import TDMPC, TDMPCConfig
from rlwb.engine import make_engine
from rlwb.evaluate import evaluation_rng, run_evaluation
from rlwb.train import TrainConfig, train

EVAL_SEED = 10_000


def eval_curve(run_dir: pathlib.Path) -> list[tuple[int, float]]:
    """(env step, eval/return_mean) of a run folder's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars("eval/return_mean")]


@dataclass
class Setting:
    """One learning check: the task, the image and agent sizes and the budget."""

    task: str = "cartpole-balance"
    agent: str = "tdmpc"
    image_size: int = 48
    env_steps: int = 9_600
    learning_starts: int = 200
    eval_every: int = 200
    eval_episodes: int = 2
    channels: int = 16
    batch: int = 64
    horizon: int = 3
    updates_per_step: float = 1.0
    action_repeat: int = 8
    seed: int = 0
    max_episode_steps: int | None = None


@dataclass
class Outcome:
    """The untrained and the trained agent's evaluation returns on the same episodes."""

    untrained: float
    trained: float
    updates: int
    wall_s: float
    curve: list[tuple[int, float]]


def agent_for(s: Setting) -> tuple[type, Any]:
    """The agent class and its config: TD-MPC ``small()`` or DDPG ``pixels()``, resized."""
    if s.agent == "ddpg":
        return DDPG, DDPGConfig.pixels(
            seed=s.seed, conv_channels=(s.channels,) * 3, batch_size=s.batch
        )
    config = TDMPCConfig.small(
        seed=s.seed, num_channels=s.channels, batch_size=s.batch, horizon=s.horizon
    )
    return TDMPC, config


def learning_check(s: Setting, run_dir: str | None = None) -> Outcome:
    """Evaluate the untrained agent, train it with the runner, and evaluate it again on
    the same evaluation seed and episodes."""
    kw: dict[str, Any] = {"observation": "pixels", "image_size": s.image_size,
                          "frame_stack": 3, "action_repeat": s.action_repeat}  # fmt: skip
    if s.max_episode_steps:
        kw["max_episode_steps"] = s.max_episode_steps
    agent_cls, agent = agent_for(s)
    engine = make_engine(s.task, s.eval_episodes, backend="mujoco", seed=EVAL_SEED, **kw)
    untrained = agent_cls(agent, engine.spec, "cpu")
    with evaluation_rng(untrained, EVAL_SEED):
        before = float(run_evaluation(untrained, engine, seed=EVAL_SEED)[0].mean())
    engine.close()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            task=s.task, backend="mujoco", task_kwargs=kw, seed=s.seed,
            total_steps=s.env_steps // s.action_repeat, learning_starts=s.learning_starts,
            updates_per_step=s.updates_per_step, eval_every=s.eval_every,
            eval_episodes=s.eval_episodes, eval_seed=EVAL_SEED, checkpoint_every=0,
            run_dir=run_dir or tmp, progress=False,
        )  # fmt: skip
        start = time.perf_counter()
        result = train(agent_cls, agent, cfg)
        wall = time.perf_counter() - start
        curve = eval_curve(result.run_dir)
    return Outcome(before, float(result.eval_mean), result.updates, wall, curve)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(Setting):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "agent":
            p.add_argument(flag, choices=("tdmpc", "ddpg"), default=f.default)
        elif f.name != "max_episode_steps":
            p.add_argument(flag, type=type(f.default), default=f.default)
    p.add_argument("--run-dir", default=None, help="default: a temporary folder")
    p.add_argument("--smoke", action="store_true", help="a few steps: that it runs")
    args = vars(p.parse_args(argv))
    run_dir, smoke = args.pop("run_dir"), args.pop("smoke")
    s = Setting(**args)
    if smoke:
        s = replace(s, max_episode_steps=6, env_steps=8 * s.action_repeat, learning_starts=6,
                    eval_every=4, eval_episodes=1)  # fmt: skip
    out = learning_check(s, run_dir)
    print(f"\n{s.agent} on {s.task} from {s.image_size}x{s.image_size} pixels, "
          f"{out.updates} updates, {out.wall_s:.0f} s\n")  # fmt: skip
    print("| env steps | eval return |\n|---|---|")
    print(f"| 0 (untrained) | {out.untrained:.1f} |")
    for step, value in out.curve:
        print(f"| {step} | {value:.1f} |")
    print(f"\nfinal {out.trained:.1f} vs untrained {out.untrained:.1f}")


if __name__ == "__main__":
    main()
