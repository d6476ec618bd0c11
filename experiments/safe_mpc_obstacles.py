"""Safe CEM-MPC flying a circle past pillars in strong wind (Quadrotor-Obstacles-v0).

    rlwb train safe_mpc_obstacles                           # --agent.variant gp_filter
    rlwb train safe_mpc_obstacles --agent.variant nominal   # nominal, gp, gp_filter
    rlwb eval runs/safe_mpc_obstacles-...                   # the final policy, same episodes

Nothing is trained across episodes: the GP adapts online within each episode, so the run is
a few episodes of control, an evaluation, and plots (trajectories vs reference, tracking
error, distance to the nearest obstacle, filter interventions) in <run>/plots/ and
TensorBoard. Numbers for the three variants: benchmarks/RESULTS.md (safe_mpc_bench).
"""

from dataclasses import dataclass, field

from rlwb.agents.safe_cem_mpc import SafeCEMMPC, SafeCEMMPCConfig
from rlwb.experiments._safe_mpc_report import write_report
from rlwb.train import TrainConfig, TrainResult, run_experiment


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="Quadrotor-Obstacles-v0",
            total_steps=400,
            eval_every=0,
            eval_episodes=4,
            checkpoint_every=0,
            log_every=100,
        )  # fmt: skip
    )
    agent: SafeCEMMPCConfig = field(default_factory=lambda: SafeCEMMPCConfig(variant="gp_filter"))


def main(argv: list[str] | None = None) -> TrainResult:
    result = run_experiment(SafeCEMMPC, Config, argv, __doc__)
    if not result.interrupted:
        write_report(result)
    return result


if __name__ == "__main__":
    main()
