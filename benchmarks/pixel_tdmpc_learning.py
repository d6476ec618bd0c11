"""Pixel TD-MPC learning check: the evaluation return of a short run from pixels against
the same agent untrained, on DMC cartpole (balance by default), with the curve.

    python benchmarks/pixel_tdmpc_learning.py               # cartpole-balance, 9,600 env steps
    python benchmarks/pixel_tdmpc_learning.py --task cartpole-swingup --image-size 64
    python benchmarks/pixel_tdmpc_learning.py --smoke       # seconds: that it runs

TD-MPC is ``TDMPCConfig.small()`` with a conv encoder of ``--channels`` filters, batch
``--batch``, horizon ``--horizon``: the authors' algorithm and encoder shapes at a size a
2-core CPU can update. Images are ``--image-size`` square, 3 stacked frames, action
repeat 8 (the authors' cartpole setting). The untrained agent is evaluated on the run's
evaluation seed and episodes. Prints a markdown table (env steps, evaluation return).
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile
import time

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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="cartpole-balance")
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--env-steps", type=int, default=9_600)
    p.add_argument("--learning-starts", type=int, default=200, help="agent steps")
    p.add_argument("--eval-every", type=int, default=200, help="agent steps")
    p.add_argument("--eval-episodes", type=int, default=2)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--horizon", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", default=None, help="default: a temporary folder")
    p.add_argument("--smoke", action="store_true", help="a few steps: that it runs")
    args = p.parse_args(argv)
    kw = {"observation": "pixels", "image_size": args.image_size, "frame_stack": 3,
          "action_repeat": 8}  # fmt: skip
    steps, starts, every = args.env_steps // 8, args.learning_starts, args.eval_every
    if args.smoke:
        kw["max_episode_steps"] = 6
        steps, starts, every, args.eval_episodes = 8, 6, 4, 1
    agent = TDMPCConfig.small(seed=args.seed, num_channels=args.channels,
                              batch_size=args.batch, horizon=args.horizon)  # fmt: skip

    engine = make_engine(args.task, args.eval_episodes, backend="mujoco", seed=EVAL_SEED, **kw)
    untrained = TDMPC(agent, engine.spec, "cpu")
    with evaluation_rng(untrained, EVAL_SEED):
        before = float(run_evaluation(untrained, engine, seed=EVAL_SEED)[0].mean())
    engine.close()

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            task=args.task, backend="mujoco", task_kwargs=kw, seed=args.seed,
            total_steps=steps, learning_starts=starts, eval_every=every,
            eval_episodes=args.eval_episodes, eval_seed=EVAL_SEED, checkpoint_every=0,
            run_dir=args.run_dir or tmp, progress=False,
        )  # fmt: skip
        start = time.perf_counter()
        result = train(TDMPC, agent, cfg)
        wall = time.perf_counter() - start
        curve = eval_curve(result.run_dir)
    print(f"\n{args.task} from {args.image_size}x{args.image_size} pixels, {result.updates} "
          f"updates, {wall:.0f} s\n")  # fmt: skip
    print("| env steps | eval return |\n|---|---|")
    print(f"| 0 (untrained) | {before:.1f} |")
    for step, value in curve:
        print(f"| {step} | {value:.1f} |")
    print(f"\nfinal {result.eval_mean:.1f} vs untrained {before:.1f}")


if __name__ == "__main__":
    main()
