"""Checkpoints written by the code before the actor-critic core load into it and train on
as the old code does: ``dump`` (run with the old tree first on PYTHONPATH, from /tmp)
saves DDPG, DDPG (paper preset), DDPG+HER and GDG states after ackit_parity.py's training,
and their critics after 5 more updates; ``load`` (this tree) loads them, runs the same 5
updates and prints the largest difference.

    cd /tmp && PYTHONPATH=OLD_TREE python ackit_old_checkpoints.py dump old_ckpt.pt
    python ackit_old_checkpoints.py load old_ckpt.pt
"""

import copy
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import ackit_parity  # noqa: E402

agents = {}


def trained() -> dict:
    """The four agents of ackit_parity.py after its 200 updates."""
    train = ackit_parity.train

    def keep(agent):
        out = train(agent)
        agents[f"{type(agent).__name__}{getattr(agent.config, 'batch_norm', '')}"] = agent
        return out

    ackit_parity.train = keep
    ackit_parity.ddpg_case(False), ackit_parity.ddpg_case(True)
    ackit_parity.goal_case("her"), ackit_parity.goal_case("gdg")
    return agents


def main() -> None:
    if sys.argv[1] == "dump":
        saved = {k: copy.deepcopy(a.state_dict()) for k, a in trained().items()}
        for k, agent in agents.items():
            agent.update(5)
            saved[k]["after5"] = copy.deepcopy(agent.critic.state_dict())
        torch.save(saved, sys.argv[2])
        return
    saved = torch.load(sys.argv[2], weights_only=False)
    print("| agent | critic Adam groups saved / loaded | max abs difference after 5 more updates |")
    print("|---|---|---|")
    for k, agent in trained().items():
        after5 = saved[k].pop("after5")
        agent.load_state_dict(saved[k])
        agent.update(5)
        now = agent.critic.state_dict()
        gap = max(float((now[n] - after5[n]).abs().max()) for n in after5)
        groups = len(saved[k]["critic_opt"]["param_groups"]), len(agent.critic_opt.param_groups)
        print(f"| {k} | {groups[0]} / {groups[1]} | {gap:.3g} |")


if __name__ == "__main__":
    main()
