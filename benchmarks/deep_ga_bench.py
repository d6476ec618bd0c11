"""Deep GA population evaluation speed: rlwb against EvoTorch, same network, population, task.

One evaluation = every network of a population runs one episode (capped at ``--horizon``
steps). rlwb: the Deep GA's evaluator (one closed-loop rollout of the ``mujoco`` engine,
member i driven by network i, batched matmuls). EvoTorch (``pip install evotorch``):
``VecGymNE`` with the same 2 x 256 tanh MLP on ``--population`` Gymnasium envs, no Ray
actors. Frames are executed env steps (random networks fall early in Humanoid, so its
episodes are short for both). Both get the same torch threads.

    python benchmarks/deep_ga_bench.py                         # HalfCheetah-v5, Humanoid-v5
    python benchmarks/deep_ga_bench.py --tasks Humanoid-v5 --population 512 --horizon 200
"""

from __future__ import annotations

import argparse
import time

import torch

from rlwb.agents.ga_evaluation import LocalEvaluator
from rlwb.agents.ga_genome import Genomes
from rlwb.engine import make_engine
from rlwb.policies import PopulationMLP


def rlwb_fps(task: str, population: int, horizon: int, hidden: tuple[int, ...]) -> float:
    engine = make_engine(task, 1, backend="mujoco")
    spec = engine.spec
    net = PopulationMLP(
        spec.observation_shape[0], spec.action_dim, hidden, 1, spec.action_low, spec.action_high
    )
    genomes = Genomes(net.num_params, net.init_scale(), 0.01, 2**24, 0, "cpu")
    seeds = genomes.draw(population, torch.Generator().manual_seed(0))
    params = genomes.init(seeds)
    evaluator = LocalEvaluator(engine.spawn, net, horizon)
    evaluator.evaluate(params[:2], [[s] for s in seeds[:2]], 1, seed=0)  # warm-up
    start = time.perf_counter()
    result = evaluator.evaluate(params, [[s] for s in seeds], 1, seed=1)
    elapsed = time.perf_counter() - start
    evaluator.close()
    return result.frames / elapsed


def evotorch_fps(task: str, population: int, horizon: int, hidden: tuple[int, ...]) -> float:
    from evotorch.neuroevolution import VecGymNE

    layers = []
    for k, width in enumerate(hidden):
        layers.append(f"Linear({'obs_length' if k == 0 else hidden[k - 1]}, {width}) >> Tanh()")
    layers.append(f"Linear({hidden[-1]}, act_length)")
    problem = VecGymNE(
        task,
        " >> ".join(layers),
        env_config={"max_episode_steps": horizon},
        max_num_envs=population,
        num_actors=None,
        device="cpu",
    )
    problem.evaluate(problem.generate_batch(population))  # warm-up: builds the envs
    batch, before = problem.generate_batch(population), problem.interaction_count
    start = time.perf_counter()
    problem.evaluate(batch)
    elapsed = time.perf_counter() - start
    return (problem.interaction_count - before) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["HalfCheetah-v5", "Humanoid-v5"])
    parser.add_argument("--population", type=int, default=256)
    parser.add_argument("--horizon", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-evotorch", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hidden = (256, 256)
    print(f"population {args.population}, 2x256 tanh MLP, horizon {args.horizon}, "
          f"{args.threads} torch threads")  # fmt: skip
    print("| task | rlwb frames/s | EvoTorch VecGymNE frames/s | ratio |")
    print("|---|---:|---:|---:|")
    for task in args.tasks:
        ours = rlwb_fps(task, args.population, args.horizon, hidden)
        theirs = (
            float("nan") if args.no_evotorch
            else evotorch_fps(task, args.population, args.horizon, hidden)
        )  # fmt: skip
        print(f"| {task} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f} |", flush=True)


if __name__ == "__main__":
    main()
