"""Old against new actor-critic updates: DDPG, DDPG+HER and GDG trained from one seed on the
same transitions, their networks dumped, then compared.

    cd /tmp && PYTHONPATH=OLD_TREE python ackit_parity.py dump old.pt   # code before the core
    python ackit_parity.py dump new.pt                                 # this tree
    python ackit_parity.py compare old.pt new.pt

OLD_TREE is a folder holding ``rlwb/`` of the old commit with ``agents``, ``envs``,
``planners``, ``experiments`` linked inside it (the installed package layout)."""

import sys

import torch

UPDATES = (1, 3, 16, 1, 40, 139)  # 200 updates in calls of several sizes


def ddpg_case(paper: bool) -> dict:
    from rlwb.agents.ddpg import DDPG, DDPGConfig
    from rlwb.engine.base import EngineSpec

    bound = torch.full((2,), 2.0)
    spec = EngineSpec(task_id="toy", num_envs=4, observation_shape=(5,), action_dim=2,
                      action_low=-bound, action_high=bound, max_episode_steps=100, dt=0.05,
                      device=torch.device("cpu"))  # fmt: skip
    torch.manual_seed(0)
    kw = dict(hidden=(64, 48), batch_size=32, buffer_size=2000, seed=0)
    config = DDPGConfig.paper(**kw) if paper else DDPGConfig(critic_l2=1e-2, **kw)
    agent = DDPG(config, spec, "cpu")
    g = torch.Generator().manual_seed(1)
    for _ in range(150):
        obs, action = torch.randn(4, 5, generator=g), 4 * torch.rand(4, 2, generator=g) - 2
        reward, next_obs = torch.randn(4, generator=g), torch.randn(4, 5, generator=g)
        done = torch.rand(4, generator=g) < 0.1
        agent.observe(obs, action, reward, next_obs, done, torch.zeros(4, dtype=torch.bool))
    return train(agent)


def goal_case(name: str) -> dict:
    from rlwb.agents.goal.ddpg_her import DDPGHER, DDPGHERConfig
    from rlwb.agents.goal.gdg import GDG, GDGConfig
    from rlwb.engine import make_engine

    cls, cfg = {"gdg": (GDG, GDGConfig), "her": (DDPGHER, DDPGHERConfig)}[name]
    kw = dict(min_goal_distance=2.0, max_episode_steps=50, terminate_on_success=True)
    engine = make_engine("PointMaze-Open-Goal-v0", 4, backend="torch", seed=0, **kw)
    torch.manual_seed(0)
    agent = cls(cfg(hidden=(64, 64), batch_size=64, probe_every=50, random_goal_prob=0.2,
                    seed=0), engine.spec, "cpu")  # fmt: skip
    g = torch.Generator().manual_seed(1)
    obs = engine.reset(seed=0)
    for _ in range(150):
        action = torch.rand(4, engine.spec.action_dim, generator=g) * 2 - 1
        nxt, reward, term, trunc, info = engine.step(action)
        real = torch.where(info["done"][:, None], info["final_obs"], nxt)
        agent.observe(obs, action, reward, real, term, trunc)
        obs = nxt
    return train(agent)


def train(agent) -> dict:
    losses = []
    for n in UPDATES:
        out = agent.update(n)
        losses.append(torch.stack([out["critic_loss"], out["actor_loss"]]))
    nets = ("actor", "critic", "actor_target", "critic_target")
    state = {f"{k}.{p}": v.clone() for k in nets for p, v in getattr(agent, k).state_dict().items()}
    return {**state, "losses": torch.stack(losses)}


def main() -> None:
    if sys.argv[1] == "dump":
        torch.set_num_threads(1)
        cases = {"ddpg": ddpg_case(False), "ddpg_paper": ddpg_case(True),
                 "her": goal_case("her"), "gdg": goal_case("gdg")}  # fmt: skip
        torch.save(cases, sys.argv[2])
        return
    old, new = torch.load(sys.argv[2]), torch.load(sys.argv[3])
    print("| case | tensors | max abs difference (parameters) | max abs difference (losses) |")
    print("|---|---|---|---|")
    for case in old:
        keys = [k for k in old[case] if k != "losses" and old[case][k].is_floating_point()]
        assert keys == [k for k in new[case] if k != "losses" and new[case][k].is_floating_point()]
        par = max(float((old[case][k] - new[case][k]).abs().max()) for k in keys)
        loss = float((old[case]["losses"] - new[case]["losses"]).abs().max())
        print(f"| {case} | {len(keys)} | {par:.3g} | {loss:.3g} |")


if __name__ == "__main__":
    main()
