"""Deep GA on Atari (the paper's headline), on the envpool backend: pip install "rlwb[atari]".

    rlwb train deep_ga_atari                               # Frostbite-v5, the paper's settings
    rlwb train deep_ga_atari --train.task Pong-v5          # any EnvPool Atari id
    rlwb train deep_ga_atari --agent.num-workers 16        # chunks on 16 Ray actors
    rlwb train deep_ga_atari --train.device cuda           # networks on the GPU

The defaults are the paper's (and its released code's) Atari settings: N = 1000
(999 children + the elite), T = 20, sigma = 0.002, one episode per child, the elite from
10 candidates over 30 episodes, episodes capped at 5,000 agent steps (the engine's
``max_episode_steps``, so the runner's evaluation and ``rlwb eval`` use the cap too), the
large DQN network (32-64-64 convolutions, 512 hidden units, 4.0M weights) over DQN's
preprocessing (84 x 84 grey, frame skip 4 with the max of the last two frames, 4 stacked
frames, up to 30 no-op starts; see rlwb.engine.envpool_backend). Budgets count agent steps:
the paper's 1B game frames are ``--train.total-steps 250000000`` at frame skip 4. A
generation is up to 6.5M agent steps and 1000 networks of 16 MB: a GPU job (the paper:
about 4 h for 1B frames on one workstation, 1 h on 720 cores).

The CPU preset (``CPU_PRESET``; about ten generations, minutes on two quiet cores):

    rlwb train deep_ga_atari --agent.population 32 --agent.truncation 6 --agent.conv small \
        --agent.elite-candidates 4 --agent.elite-episodes 3 --agent.chunk 32 \
        --train.task-kwargs.max-episode-steps 1000 --train.total-steps 200000 \
        --train.eval-every 100000 --train.eval-episodes 3

N = 32, T = 6, the authors' small network (16-32 convolutions, 256 hidden units), the elite
from 4 candidates over 3 episodes, episodes capped at 1,000 agent steps; sigma stays the
paper's. TensorBoard adds ``charts/frames_per_second`` and its split into
``network_frames_per_second`` and ``emulator_frames_per_second`` to the other GA charts.
"""

from dataclasses import dataclass, field

from rlwb.agents.deep_ga.agent import DeepGA, DeepGAConfig
from rlwb.train import TrainConfig, TrainResult, run_experiment

CPU_PRESET = [
    "--agent.population", "32", "--agent.truncation", "6", "--agent.conv", "small",
    "--agent.elite-candidates", "4", "--agent.elite-episodes", "3", "--agent.chunk", "32",
    "--train.task-kwargs.max-episode-steps", "1000", "--train.total-steps", "200000",
    "--train.eval-every", "100000", "--train.eval-episodes", "3",
]  # fmt: skip


@dataclass
class Config:
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            task="Frostbite-v5",
            backend="envpool",
            task_kwargs={"max_episode_steps": 5_000},  # the paper's cap, in agent steps
            total_steps=250_000_000,  # 1B game frames
            eval_every=25_000_000,
            eval_episodes=30,
            checkpoint_every=1,  # every generation
        )
    )
    agent: DeepGAConfig = field(default_factory=DeepGAConfig.atari)


def main(argv: list[str] | None = None) -> TrainResult:
    return run_experiment(DeepGA, Config, argv, __doc__)


if __name__ == "__main__":
    main()
