from __future__ import annotations

import pytest
import torch

from optuna_devnas.instanas import RewardSchedule, latency_reward


def test_latency_reward_is_a_parabola_between_the_bounds() -> None:
    z = torch.tensor([0.5, 1.0, 2.0, 3.0, 3.5, 1.5])
    reward = latency_reward(z, upper=3.0, lower=1.0)
    # 1 halfway, 0 at and beyond both bounds, -(z-U)(z-L)/((U-L)^2/4) in between.
    assert reward.tolist() == pytest.approx([0.0, 0.0, 1.0, 0.0, 0.0, 0.75])


def test_upper_bound_shrinks_linearly_from_a_l_all_to_b_l_mbv2() -> None:
    schedule = RewardSchedule(all_latency=10.0, mbv2_latency=4.0, min_latency=1.0, epochs=4)
    assert schedule.upper(0) == pytest.approx(7.0)  # 0.7 L_all
    assert schedule.upper(4) == pytest.approx(2.0)  # 0.5 L_mbv2
    assert schedule.upper(1) == pytest.approx(7.0 - 5.0 / 4)
    assert schedule.upper(2.5) == pytest.approx(7.0 - 5.0 * 2.5 / 4)
    assert schedule.upper(9) == pytest.approx(2.0)  # clipped after T


def test_right_predictions_earn_pos_w_times_latency_reward_wrong_ones_neg_w() -> None:
    schedule = RewardSchedule(
        all_latency=10.0, mbv2_latency=4.0, min_latency=1.0, epochs=4, pos_w=30.0, neg_w=-2.0
    )
    middle = (schedule.upper(0) + 1.0) / 2
    z = torch.tensor([middle, middle, 9.0])
    reward = schedule(z, torch.tensor([True, False, True]), 0)
    assert reward.tolist() == pytest.approx([30.0, -2.0, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs=0"),
        ({"min_latency": 20.0}, "min_latency=20.0"),
        ({"upper_end": 0.1}, "upper bound at epoch 4"),
        ({"upper_start": -1.0}, "upper_start=-1.0"),
    ],
)
def test_bad_schedules_are_refused(kwargs: dict, message: str) -> None:
    arguments = {"all_latency": 10.0, "mbv2_latency": 4.0, "min_latency": 1.0, "epochs": 4}
    with pytest.raises(ValueError, match=message):
        RewardSchedule(**{**arguments, **kwargs})


def test_latency_reward_needs_upper_above_lower() -> None:
    with pytest.raises(ValueError, match="upper > lower"):
        latency_reward(torch.zeros(1), upper=1.0, lower=1.0)
