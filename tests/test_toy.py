"""The Train flat chapter's toy: SAM's objective prefers the flat well, noisy SAM reaches it where gradient
descent stays in the sharp one, and noiseless SAM stalls ρ uphill of the sharp minimum."""

from __future__ import annotations

import numpy as np
import torch

from flatcompress.flatness.sam import SAM
from flatcompress.flatness.toy import TwoWells, basin, trajectory, worst_case

SHARP, FLAT = (-0.75, 0.0), (0.75, 0.0)
RHO, LR = 0.5, 0.02


def _sgd(p):
    return torch.optim.SGD(p, lr=LR)


def _sam(p):
    return SAM(p, torch.optim.SGD, rho=RHO, lr=LR)


def test_the_worst_case_lifts_the_sharp_minimum_above_the_flat_one():
    surface = TwoWells()
    minima = torch.tensor([SHARP, FLAT], dtype=torch.float64)
    plain, worst = surface(minima), worst_case(surface, minima, RHO)
    assert plain[0] < plain[1]  # the sharp minimum is deeper
    assert worst[0] > worst[1]  # but worse in the worst case over the ball
    assert torch.all(worst >= plain)


def test_noisy_sam_reaches_the_flat_well_where_noisy_gradient_descent_stays_in_the_sharp_one():
    surface = TwoWells()
    for start, seed in (((-0.5, 0.0), 0), ((-0.75, 0.25), 1), ((-1.0, 0.0), 2)):
        for make, expected in ((_sgd, 0), (_sam, 1)):
            path = trajectory(surface, make, start, 800, noise=2.0, seed=seed)
            assert basin(surface, path[-100:].mean(0), [SHARP, FLAT]) == expected, (make.__name__, start)


def test_noiseless_sam_stalls_where_its_ascent_step_lands_on_the_sharp_minimum():
    surface = TwoWells()
    end = trajectory(surface, _sam, (-0.6, 0.1), 800)[-1]
    assert abs(np.linalg.norm(end - np.array(SHARP)) - RHO) < 0.02  # ρ from the sharp minimum
    w = torch.tensor(end, requires_grad=True)
    surface(w).backward()
    landing = end + RHO * (w.grad / w.grad.norm()).numpy()  # w + ε̂(w), eq. 1
    assert np.linalg.norm(landing - np.array(SHARP)) < 0.02


def test_trajectories_are_reproducible_per_seed_and_basin_says_when_a_point_drains_nowhere():
    surface = TwoWells()
    a, b = (trajectory(surface, _sgd, (0.0, 0.5), 20, noise=1.0, seed=s) for s in (3, 3))
    assert a.shape == (21, 2) and np.array_equal(a, b)
    assert not np.array_equal(a, trajectory(surface, _sgd, (0.0, 0.5), 20, noise=1.0, seed=4))
    assert basin(surface, np.array([6.0, 6.0]), [SHARP, FLAT]) == -1  # the plateau: gradient descent does not move
