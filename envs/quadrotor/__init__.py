"""Quadrotor tracking under wind on the ``torch`` backend, registered on import.

``Quadrotor-{Circle,Figure8,Step}-v0``: tracking only; ``Quadrotor-Obstacles-v0``: the
circle with the ``pillars`` obstacle field. Every task argument of
:class:`~rlwb.envs.quadrotor.task.Quadrotor` can be overridden (``--train.task-kwargs``).
"""

from rlwb.tasks import TaskEntry, register

_LOADER = "rlwb.envs.quadrotor.task:Quadrotor"

for _id, _kwargs, _what in (
    ("Circle", {"reference": "circle"}, "circle"),
    ("Figure8", {"reference": "figure8"}, "figure-eight"),
    ("Step", {"reference": "step"}, "set-point step"),
    ("Obstacles", {"reference": "circle", "obstacles": "pillars"}, "circle past pillars"),
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
