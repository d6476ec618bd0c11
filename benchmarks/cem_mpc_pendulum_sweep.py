"""How long true-model MPC keeps InvertedPendulum-v5 up: for each seed, B members (each its
own reset state) plan in one batched call per control step; prints the steps each member
survived and how far the cart went (the rail is at |x| = 1).

    python benchmarks/cem_mpc_pendulum_sweep.py --members 2 --seeds 11 12 13 14 15
    python benchmarks/cem_mpc_pendulum_sweep.py --seeds 11 12 --agent.rest-tie-break 0

The agent starts from the preset ``rlwb train cem_mpc_mujoco`` picks for InvertedPendulum-v5
(``rlwb.agents.cem_mpc.pendulum_preset``); ``--agent.*`` options change it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import torch
import tyro

from rlwb import make_engine
from rlwb.agent import act_on
from rlwb.agents.cem_mpc import CEMMPC, CEMMPCConfig, pendulum_preset


@dataclass
class Args:
    agent: CEMMPCConfig = field(default_factory=pendulum_preset)
    members: int = 5
    seeds: list[int] = field(default_factory=lambda: [0])
    steps: int = 1000


def survive(agent_config: CEMMPCConfig, members: int, seed: int, steps: int) -> dict:
    """Steps survived and max |cart x| per member, for one seed."""
    engine = make_engine("InvertedPendulum-v5", members, backend="mujoco", seed=seed)
    config = dataclasses.replace(agent_config, seed=seed)
    agent = CEMMPC(config, engine.spec, "cpu")
    obs, start = engine.reset(seed=seed), time.perf_counter()
    survived = torch.full((members,), steps)
    reach = torch.zeros(members)
    for t in range(steps):
        obs, _, terminated, _, _ = engine.step(act_on(agent, engine, obs))
        reach = torch.maximum(reach, obs[:, 0].abs())
        survived[terminated & (survived == steps)] = t + 1
        if bool((survived < steps).all()):
            break
    return dict(survived=survived.tolist(), reach=[round(x, 2) for x in reach.tolist()],
                wall=time.perf_counter() - start)  # fmt: skip


def main(args: Args) -> None:
    torch.set_num_threads(1)
    print(args.agent)
    up = total = 0
    for seed in args.seeds:
        r = survive(args.agent, args.members, seed, args.steps)
        up += sum(s == args.steps for s in r["survived"])
        total += args.members
        print(f"seed {seed}: survived {r['survived']}, max |x| {r['reach']}, "
              f"{r['wall']:.0f} s wall", flush=True)  # fmt: skip
    print(f"{up}/{total} members up for {args.steps} steps")


if __name__ == "__main__":
    main(tyro.cli(Args))
