"""Deep GA learning on Atari at a CPU budget, beside a random policy.

    python benchmarks/atari_learning.py                                  # Frostbite, Breakout
    python benchmarks/atari_learning.py --games Frostbite-v5 --total-steps 400000

Each game trains ``rlwb train deep_ga_atari`` through the runner with its CPU preset
(experiments/deep_ga_atari.py ``CPU_PRESET``: N = 32, T = 6, the small network, the elite
from 4 candidates over 3 episodes, episodes capped at 1,000 agent steps) and
``--total-steps``, then reads the run's TensorBoard: the elite's validation score per
generation and the final evaluation. The random policy plays ``--random-episodes`` episodes
of uniform random actions under the same cap and preprocessing. Budgets are agent steps
(x4 game frames). Unknown options go to the experiment (``--agent.num-workers 2``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import torch


def random_policy(game: str, episodes: int, cap: int, seed: int = 0) -> tuple[float, float]:
    """Mean and std return of uniform random actions over ``episodes`` episodes."""
    from rlwb.engine import make_engine

    with make_engine(game, episodes, seed=seed, max_episode_steps=cap) as engine:
        gen = torch.Generator().manual_seed(seed)
        engine.reset(seed=seed)
        n = engine.spec.num_actions
        result = engine.rollout(
            lambda obs: torch.randint(n, (len(obs),), generator=gen), horizon=cap
        )
    returns = result.returns.double()
    return float(returns.mean()), float(returns.std()) if episodes > 1 else 0.0


def elite_scores(run_dir: str) -> list[float]:
    """``charts/elite_score`` of a run, one per generation."""
    import glob

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(glob.glob(os.path.join(run_dir, "events*"))[0])
    events.Reload()
    return [s.value for s in events.Scalars("charts/elite_score")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--games", nargs="+", default=["Frostbite-v5", "Breakout-v5"])
    parser.add_argument("--total-steps", type=int, default=200_000)
    parser.add_argument("--random-episodes", type=int, default=10)
    parser.add_argument("--run-dir", default=None, help="where runs go (default: a temp dir)")
    parser.add_argument("--preset", nargs=argparse.REMAINDER, default=None,
                        help="replace the CPU preset's options (after --preset)")  # fmt: skip
    args, extra = parser.parse_known_args()
    from rlwb.experiments import deep_ga_atari

    preset = deep_ga_atari.CPU_PRESET if args.preset is None else args.preset
    cap = int(preset[preset.index("--train.task-kwargs.max-episode-steps") + 1])
    run_root = args.run_dir or tempfile.mkdtemp(prefix="atari_learning_")
    rows = []
    for game in args.games:
        argv = [*preset, "--train.total-steps", str(args.total_steps), "--train.task", game,
                "--train.run-dir", run_root, "--train.progress-every", "60",
                *[a for a in extra if a != "--"]]  # fmt: skip
        result = deep_ga_atari.main(argv)
        scores = elite_scores(str(result.run_dir))
        rnd = random_policy(game, args.random_episodes, cap)
        rows.append((game, result, scores, rnd))
    print(f"\nload average {os.getloadavg()[0]:.1f}; budgets in agent steps (x4 game frames); "
          f"episodes capped at {cap} agent steps")  # fmt: skip
    print("| game | agent steps | generations | elite score, gen 1 -> best -> last | "
          "final eval | random policy |")
    print("|---|---|---|---|---|---|")
    for game, result, scores, (rmean, rstd) in rows:
        first, best, last = (scores[0], max(scores), scores[-1]) if scores else (0, 0, 0)
        print(f"| {game} | {result.env_steps:,} | {len(scores)} | {first:.0f} -> {best:.0f} -> "
              f"{last:.0f} | {result.eval_mean:.1f} ± {result.eval_std:.1f} | "
              f"{rmean:.1f} ± {rstd:.1f} |", flush=True)  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
