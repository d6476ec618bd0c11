"""Quadrotor tracking under wind on the ``torch`` backend, registered on import.

``Quadrotor-{Circle,Figure8,Step}-v0``: tracking only; ``Quadrotor-Obstacles-v0``: the
circle with the ``pillars`` obstacle field in a stronger wind (5 m/s mean, 1.5 m/s gusts:
about 2.5 m/s^2 of push, enough to carry a planner that ignores it into a pillar). Every
task argument of :class:`~rlwb.envs.quadrotor.task.Quadrotor` can be overridden
(``--train.task-kwargs``).
"""

from rlwb.tasks import TaskEntry, register

_LOADER = "rlwb.envs.quadrotor.task:Quadrotor"

for _id, _kwargs, _what in (
    ("Circle", {"reference": "circle"}, "circle"),
    ("Figure8", {"reference": "figure8"}, "figure-eight"),
    ("Step", {"reference": "step"}, "set-point step"),
    (
        "Obstacles",
        {"reference": "circle", "obstacles": "pillars", "wind_speed": 5.0, "gust_intensity": 1.5},
        "circle past pillars in strong wind",
    ),
):
    register(
        TaskEntry(
            id=f"Quadrotor-{_id}-v0",
            backends=("torch",),
            loader=_LOADER,
            family="quadrotor",
            description=f"quadrotor tracking a {_what} under wind gusts (thrust-vector input)",
            defaults=_kwargs,
        )
    )
