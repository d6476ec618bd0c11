"""The Gymnasium MuJoCo v5 suite, registered for the ``warp`` (GPU) and ``mujoco`` (CPU)
backends. ``warp`` comes first so ``backend="auto"`` prefers it where it reports itself
available (with CUDA) and falls back to ``mujoco`` otherwise."""

from rlwb.tasks import TaskEntry, register

_TASKS = {
    "HalfCheetah-v5": "half_cheetah:HalfCheetah",
    "Hopper-v5": "hopper:Hopper",
    "Walker2d-v5": "walker2d:Walker2d",
    "Swimmer-v5": "swimmer:Swimmer",
    "Ant-v5": "ant:Ant",
    "Humanoid-v5": "humanoid:Humanoid",
    "HumanoidStandup-v5": "humanoid_standup:HumanoidStandup",
    "InvertedPendulum-v5": "inverted_pendulum:InvertedPendulum",
    "InvertedDoublePendulum-v5": "inverted_double_pendulum:InvertedDoublePendulum",
    "Reacher-v5": "reacher:Reacher",
    "Pusher-v5": "pusher:Pusher",
}

# MuJoCo Warp 3.17 has no PGS solver, which Gymnasium's humanoid models use.
_CPU_ONLY = {"Humanoid-v5", "HumanoidStandup-v5"}

for _id, _loader in _TASKS.items():
    register(
        TaskEntry(
            id=_id,
            backends=("mujoco",) if _id in _CPU_ONLY else ("warp", "mujoco"),
            loader=f"rlwb.envs.mujoco.{_loader}",
            gym_id=_id,
            family="mujoco",
            description=f"Gymnasium's {_id}, reproduced from the physics state",
        )
    )

register(
    TaskEntry(
        id="ReacherGoal-v0",
        backends=("warp", "mujoco"),
        loader="rlwb.envs.mujoco.reacher_goal:GoalReacher",
        family="mujoco",
        description="Reacher-v5 with a goal observation (fingertip, target) and sparse reward",
    )
)
