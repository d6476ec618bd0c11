"""The DeepMind Control Suite (dm_control 1.0.50) on the ``mujoco`` backend, TD-MPC-style
ids (``cheetah-run``). Needs ``pip install rlwb[dmc]`` to build (the tasks load
dm_control's model XML); registering them imports nothing heavy.

Episodes are 1000 env steps; one env step is dm_control's control step (``n_sub_steps``
MuJoCo steps). With ``make_engine(..., action_repeat=k)`` an engine step is k env steps;
TD-MPC (and the published DMC curves) count *environment* steps, i.e. engine steps x k
(TD-MPC: ``env_step = step * action_repeat``; k = 4 by default, 2 walker, 8 cartpole), with
episodes of 1000 / k engine steps.

Backends: ``mujoco`` first (bit-identical to dm_control; ``backend="auto"`` picks it), then
``warp`` (float32; resets still run on the CPU, per member)."""

from rlwb.tasks import TaskEntry, register

_TASKS = {
    "cartpole-balance": "cartpole:CartpoleBalance",
    "cartpole-swingup": "cartpole:CartpoleSwingup",
    "pendulum-swingup": "pendulum:PendulumSwingup",
    "acrobot-swingup": "acrobot:AcrobotSwingup",
    "cheetah-run": "cheetah:CheetahRun",
    "walker-stand": "walker:WalkerStand",
    "walker-walk": "walker:WalkerWalk",
    "walker-run": "walker:WalkerRun",
    "hopper-stand": "hopper:HopperStand",
    "hopper-hop": "hopper:HopperHop",
    "finger-spin": "finger:FingerSpin",
    "reacher-easy": "reacher:ReacherEasy",
    "reacher-hard": "reacher:ReacherHard",
    "quadruped-walk": "quadruped:QuadrupedWalk",
    "quadruped-run": "quadruped:QuadrupedRun",
    "ball_in_cup-catch": "ball_in_cup:BallInCupCatch",
}

for _id, _loader in _TASKS.items():
    _domain, _, _task = _id.partition("-")
    register(
        TaskEntry(
            id=_id,
            backends=("mujoco", "warp"),
            loader=f"rlwb.envs.dmc.{_loader}",
            gym_id=f"dm_control/{_id}-v0",
            family="dmc",
            description=f"DeepMind Control Suite {_domain} {_task}, exact to dm_control",
        )
    )
