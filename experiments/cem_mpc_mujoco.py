"""CEM-MPC with the true simulator on the Gymnasium MuJoCo suite (mujoco backend).

    rlwb train cem_mpc_mujoco                                   # HalfCheetah-v5, one episode
    rlwb train cem_mpc_mujoco --train.task InvertedPendulum-v5  # picks the pendulum preset
    rlwb train cem_mpc_mujoco --train.task Hopper-v5 --train.seed 1
    rlwb train cem_mpc_mujoco --agent.planner.method mppi --agent.planner.samples 200

Nothing is learned: every step clones the real state into ``samples`` members of a sibling
engine and plans ``horizon`` steps with ``iterations`` CEM refits. The defaults (100 x 20 x 3,
one 1000-step episode plus one evaluation episode) take minutes on 2 CPU cores; mbrl-lib's
setting is ``--agent.planner.samples 400 --agent.planner.horizon 30
--agent.planner.iterations 5 --agent.planner.elites 64``. TensorBoard shows
``losses/plan_ms_per_step`` (planning time per control step) beside the returns.

Per-task presets (``TASK_PRESETS``) replace the agent defaults when ``--train.task`` names
the task; options given on the command line still change them. InvertedPendulum-v5's reward
is survival only, so its preset plans 40 steps ahead, perturbs the start of the warm-started
plan little (``std_ramp``), keeps elites, executes the best sequence and orders equally long
survivors by how near they end to rest (``rest_tie_break``); see ``rlwb.agents.cem_mpc``.
"""

from dataclasses import dataclass, field

from rlwb.agents.cem_mpc import CEMMPC, CEMMPCConfig, pendulum_preset
from rlwb.experiments._task_presets import config_for
from rlwb.train import TrainConfig, TrainResult, run_experiment


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="HalfCheetah-v5",
            total_steps=1_000,
            updates_per_step=1,  # update() only reports planning time
            eval_every=0,
            eval_episodes=1,
            checkpoint_every=500,
            log_every=100,
        )
    )
    agent: CEMMPCConfig = field(default_factory=CEMMPCConfig)


@dataclass
class InvertedPendulumConfig(Config):
    agent: CEMMPCConfig = field(default_factory=pendulum_preset)


TASK_PRESETS: dict[str, type] = {"InvertedPendulum-v5": InvertedPendulumConfig}


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(CEMMPC, config_for(argv, Config, TASK_PRESETS), argv, __doc__)


if __name__ == "__main__":
    main()
