from __future__ import annotations

import pytest
import torch

from optuna_devnas.instanas import Controller
from optuna_devnas.instanas._controller import bernoulli_entropy, explore, greedy


def test_controller_gives_one_probability_per_block_option_and_starts_undecided() -> None:
    torch.manual_seed(0)
    controller = Controller(in_channels=3, num_blocks=17, num_options=5, resolution=8, width=8)
    for size in (32, 8, 4):  # pooled down, kept, resized up
        probs = controller(torch.randn(6, 3, size, size))
        assert probs.shape == (6, 17, 5)
        assert ((probs > 0.45) & (probs < 0.55)).all()


def test_exploration_greedy_and_entropy() -> None:
    p = torch.tensor([0.0, 0.5, 1.0, 0.9])
    assert explore(p, 0.8).tolist() == pytest.approx([0.2, 0.5, 0.8, 0.74])
    assert greedy(p).tolist() == [False, True, True, True]
    entropy = bernoulli_entropy(p)
    assert entropy[1] == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert entropy[[0, 2]].tolist() == pytest.approx([0.0, 0.0], abs=1e-4)


def test_bad_controller_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="resolution=0"):
        Controller(in_channels=3, num_blocks=17, num_options=5, resolution=0)
