"""The DeepMind Control Suite (dm_control 1.0.50) on the ``mujoco`` backend, TD-MPC-style
ids (``cheetah-run``, ``cup-catch``; dm_control's ``ball_in_cup-catch`` works too). Needs
``pip install rlwb[dmc]`` to build (the tasks load dm_control's model XML and assets);
registering them imports nothing heavy.

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
    "cartpole-balance_sparse": "cartpole:CartpoleBalanceSparse",
    "cartpole-swingup_sparse": "cartpole:CartpoleSwingupSparse",
    "pendulum-swingup": "pendulum:PendulumSwingup",
    "acrobot-swingup": "acrobot:AcrobotSwingup",
    "cheetah-run": "cheetah:CheetahRun",
    "walker-stand": "walker:WalkerStand",
    "walker-walk": "walker:WalkerWalk",
    "walker-run": "walker:WalkerRun",
    "hopper-stand": "hopper:HopperStand",
    "hopper-hop": "hopper:HopperHop",
    "finger-spin": "finger:FingerSpin",
    "finger-turn_easy": "finger:FingerTurnEasy",
    "finger-turn_hard": "finger:FingerTurnHard",
    "reacher-easy": "reacher:ReacherEasy",
    "reacher-hard": "reacher:ReacherHard",
    "quadruped-walk": "quadruped:QuadrupedWalk",
    "quadruped-run": "quadruped:QuadrupedRun",
    "ball_in_cup-catch": "ball_in_cup:BallInCupCatch",
    "cup-catch": "ball_in_cup:BallInCupCatch",
    "fish-swim": "fish:FishSwim",
    "humanoid-stand": "humanoid:HumanoidStand",
    "humanoid-walk": "humanoid:HumanoidWalk",
    "humanoid-run": "humanoid:HumanoidRun",
    "dog-stand": "dog:DogStand",
    "dog-walk": "dog:DogWalk",
    "dog-trot": "dog:DogTrot",
    "dog-run": "dog:DogRun",
}

# TD-MPC's short domain names -> dm_control's
DOMAIN_ALIASES = {"cup": "ball_in_cup"}


def dm_control_name(task_id: str) -> tuple[str, str]:
    """``(domain, task)`` of a task id as ``dm_control.suite.load`` names it
    (``cup-catch`` -> ``("ball_in_cup", "catch")``)."""
    domain, _, task = task_id.partition("-")
    return DOMAIN_ALIASES.get(domain, domain), task


for _id, _loader in _TASKS.items():
    _domain, _task = dm_control_name(_id)
    register(
        TaskEntry(
            id=_id,
            backends=("mujoco", "warp"),
            loader=f"rlwb.envs.dmc.{_loader}",
            gym_id=f"dm_control/{_domain}-{_task}-v0",
            family="dmc",
            description=f"DeepMind Control Suite {_domain} {_task}, exact to dm_control",
        )
    )
