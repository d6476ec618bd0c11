"""The prelude agents share (:mod:`rlwb.agent_kit`): seeded streams, format checks, and
checkpoints that do not fit failing in one line naming the agent."""

from __future__ import annotations

import pytest
import torch

from rlwb import agent_kit as kit
from rlwb.errors import CheckpointError


def test_a_generator_without_seed_follows_torchs_global_seed():
    torch.manual_seed(7)
    first = torch.rand(3, generator=kit.seeded_generator(None))
    torch.manual_seed(7)
    again = torch.rand(3, generator=kit.seeded_generator(None))
    assert torch.equal(first, again)
    assert torch.equal(
        torch.rand(3, generator=kit.seeded_generator(5)),
        torch.rand(3, generator=torch.Generator().manual_seed(5)),
    )


@pytest.mark.parametrize("state", [{"format_version": 3}, {"format_version": "1"}, {}, [1]])
def test_check_format_refuses_what_it_cannot_read(state):
    with pytest.raises(CheckpointError, match=r"^DDPG checkpoint format .* not supported"):
        kit.check_format(state, 2, "DDPG")


def test_check_format_reads_the_range_it_is_given():
    assert kit.check_format({"format_version": 1}, 2, "Deep GA") == 1
    with pytest.raises(CheckpointError, match="reads 2"):
        kit.check_format({"format_version": 1}, 2, "PETS", oldest=2)


def test_a_checkpoint_that_does_not_fit_fails_in_one_line():
    net = torch.nn.Linear(2, 2)
    with pytest.raises(CheckpointError, match="^TDMPC checkpoint does not fit this agent: "):
        with kit.checkpoint_fits("TDMPC"):
            net.load_state_dict(torch.nn.Linear(3, 2).state_dict())
