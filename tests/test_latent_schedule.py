"""The latent stage's learning-rate schedule and the held-out evaluation's frame-selection rule: known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eat.latent.evaluate import moving_frames
from eat.latent.train import LrFactor


def test_step_schedule_is_osfv_multistep():
    f = LrFactor(steps=100, schedule="step", milestones=[0.5, 0.75], warmup=0)
    assert [f(s) for s in (0, 49, 50, 74, 75, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_schedule_warms_up_then_decays_to_zero():
    f = LrFactor(steps=100, schedule="cosine", milestones=[], warmup=10)
    assert f(0) == pytest.approx(0.1 * 0.5 * (1 + math.cos(0)))
    assert f(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 9 / 100)))
    assert f(50) == pytest.approx(0.5)
    assert f(100) == pytest.approx(0.0)
    assert all(f(s) >= f(s + 1) for s in range(9, 100))


def test_moving_frames_is_the_upper_half_of_the_ground_truth_displacement():
    displacement = np.array([0.1, 3.0, 0.5, 2.0, 1.0, 4.0])
    assert moving_frames(displacement).tolist() == [False, True, False, True, False, True]
    assert moving_frames(np.zeros(0)).shape == (0,)
