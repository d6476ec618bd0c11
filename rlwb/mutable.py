"""Agent settings a resumed run may change: what population-based training mutates.

An agent config lists them in ``mutable_on_resume: ClassVar[tuple[str, ...]]`` (learning
rates, exploration noise): changing them continues the same run with new settings, where
changing any other agent field would make the checkpoint a different experiment (refused).
A learning rate lives twice, in the config and in its optimizer's saved state; an
``X_lr`` field therefore also sets the rate in the checkpoint's ``X_opt`` optimizer state
before the agent loads it. Other fields take effect through the config the agent is built
with.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlwb.errors import ConfigError


def mutable_fields(config: Any) -> tuple[str, ...]:
    """The fields ``config``'s class declares mutable on resume (none by default)."""
    return tuple(getattr(type(config), "mutable_on_resume", ()))


def mutated_config(saved: Any, given: Any, changed: dict[str, Any]) -> Any:
    """``saved`` with the ``agent.X`` fields named in ``changed`` taken from ``given``."""
    names = [k.split(".", 1)[1] for k in changed if k.startswith("agent.")]
    return dataclasses.replace(saved, **{n: getattr(given, n) for n in names})


def apply_mutations(agent_state: dict[str, Any], config: Any, changed: dict[str, Any]) -> None:
    """Write each changed ``X_lr`` into the saved state of the agent's ``X_opt`` optimizer
    (its ``param_groups``), before the agent loads it: agents that bind their optimizer
    step at load time then bind the new rate."""
    for key in changed:
        section, _, name = key.partition(".")
        if section != "agent" or not name.endswith("_lr"):
            continue
        state = agent_state.get(name[: -len("_lr")] + "_opt")
        if not isinstance(state, dict) or "param_groups" not in state:
            raise ConfigError(
                f"agent.{name} is declared mutable on resume but the checkpoint holds no "
                f"optimizer state {name[: -len('_lr')]}_opt to apply it to"
            )
        for group in state["param_groups"]:
            group["lr"] = float(getattr(config, name))
