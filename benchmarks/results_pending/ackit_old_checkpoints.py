"""dump: old-code checkpoints of DDPG, DDPG+HER and GDG; load: the new code loads them and trains on."""
import sys
import torch
sys.path.insert(0, "/tmp")
from ackit_parity import ddpg_case, goal_case  # noqa
import ackit_parity

captured = {}
orig = ackit_parity.train
def train(agent):
    out = orig(agent)
    captured[type(agent).__name__ + str(getattr(agent.config, "batch_norm", ""))] = agent
    return out
ackit_parity.train = train

def build():
    ddpg_case(False); ddpg_case(True); goal_case("her"); goal_case("gdg")

if sys.argv[1] == "dump":
    build()
    import copy
    saved = {k: copy.deepcopy(a.state_dict()) for k, a in captured.items()}
    for k, a in captured.items():
        a.update(5)
        saved[k]["after5"] = {n: v.clone() for n, v in a.critic.state_dict().items()}
    torch.save(saved, sys.argv[2])
else:
    saved = torch.load(sys.argv[2], weights_only=False)
    build()
    for k, agent in captured.items():
        after5 = saved[k].pop("after5")
        agent.load_state_dict(saved[k])
        sd = agent.state_dict()
        diff = max(float((sd["critic"][n] - saved[k]["critic"][n]).abs().max()) for n in sd["critic"])
        st_new = agent.critic_opt.state_dict()["state"]
        moments = sum(float(v["exp_avg"].abs().sum()) for v in st_new.values())
        moments_old = sum(float(v["exp_avg"].abs().sum()) for v in saved[k]["critic_opt"]["state"].values())
        out = agent.update(5)
        cont = max(float((agent.critic.state_dict()[n] - after5[n]).abs().max()) for n in after5)
        print(k, "groups old/new", len(saved[k]["critic_opt"]["param_groups"]), len(agent.critic_opt.param_groups),
              "critic diff", diff, "sum|m| old/new", round(moments_old, 6), round(moments, 6), "5 more updates: max |new - old| critic", cont)
