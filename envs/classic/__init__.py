"""Analytic tasks for the ``torch`` backend (batched, differentiable), registered on import.

Classic control with Gymnasium's ids and numbers (``Pendulum-v1``,
``MountainCarContinuous-v0``), continuous cart-pole with DMC's reward
(``CartpoleBalance-v0``, ``CartpoleSwingup-v0``), and point-mass mazes
``PointMaze-{Open,UMaze,Deceptive}-{Dense,Sparse,Goal}-v0`` (``Goal``: goal-conditioned,
sparse reward, goals sampled over open cells).
"""

from rlwb.tasks import TaskEntry, register

_M = "rlwb.envs.classic"

register(
    TaskEntry(
        id="Pendulum-v1",
        backends=("torch",),
        loader=f"{_M}.pendulum:Pendulum",
        gym_id="Pendulum-v1",
        family="classic",
        description="Gymnasium's Pendulum-v1 in torch (semi-implicit Euler, exact numbers)",
    )
)
register(
    TaskEntry(
        id="MountainCarContinuous-v0",
        backends=("torch",),
        loader=f"{_M}.mountain_car:MountainCarContinuous",
        gym_id="MountainCarContinuous-v0",
        family="classic",
        description="Gymnasium's MountainCarContinuous-v0 in torch (exact numbers)",
    )
)
for _name, _swing in (("Balance", False), ("Swingup", True)):
    register(
        TaskEntry(
            id=f"Cartpole{_name}-v0",
            backends=("torch",),
            loader=f"{_M}.cartpole:CartPole",
            family="classic",
            description=f"continuous cart-pole {_name.lower()} with DMC's smooth reward",
            defaults={"swing_up": _swing},
        )
    )

_MAZE_STEPS = {"open": 200, "umaze": 300, "deceptive": 200}
_VARIANTS = {
    "Dense": {"reward_type": "dense"},
    "Sparse": {"reward_type": "sparse"},
    "Goal": {"reward_type": "sparse", "goal_conditioned": True},
}
for _maze, _title in (("open", "Open"), ("umaze", "UMaze"), ("deceptive", "Deceptive")):
    for _variant, _kwargs in _VARIANTS.items():
        register(
            TaskEntry(
                id=f"PointMaze-{_title}-{_variant}-v0",
                backends=("torch",),
                loader=f"{_M}.maze:PointMaze",
                family="maze",
                description=f"point mass in the {_title} maze, {_variant.lower()} reward",
                defaults={"maze_map": _maze, "max_episode_steps": _MAZE_STEPS[_maze], **_kwargs},
            )
        )
