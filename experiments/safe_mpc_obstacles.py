"""Safe CEM-MPC flying a circle past pillars in strong wind (Quadrotor-Obstacles-v0).

    rlwb train safe_mpc_obstacles                           # --agent.variant gp_filter
    rlwb train safe_mpc_obstacles --agent.variant nominal   # nominal, gp, gp_filter
    rlwb eval runs/safe_mpc_obstacles-...                   # the final policy, same episodes

The nominal CEM's collision cost is computed on a model without wind, and it grazes the
pillars; GP-CEM + CLF/CBF filter (the default variant here) keeps every episode clear.
Nothing is trained across episodes (the GP adapts within each one): a run is two episodes
of control, an evaluation, and plots in <run>/plots/ and TensorBoard. Numbers for the three
variants: benchmarks/RESULTS.md (safe_mpc_bench).
"""

from dataclasses import dataclass, field

from rlwb.agents.safe_cem_mpc import SafeCEMMPCConfig
from rlwb.experiments._safe_mpc_report import run, train_config
from rlwb.train import TrainConfig, TrainResult


@dataclass
class Config:
    train: TrainConfig = field(default_factory=lambda: train_config("Quadrotor-Obstacles-v0"))
    agent: SafeCEMMPCConfig = field(default_factory=lambda: SafeCEMMPCConfig(variant="gp_filter"))


def main(argv: list[str] | None = None) -> TrainResult:
    return run(Config, argv, __doc__)


if __name__ == "__main__":
    main()
