"""The learning-rate experiment's helpers on small planted cases: how a run is classified
(trains / diverged / collapsed / fails), the largest rate that trains, the steps to the target,
the fastest rate, and the record schedule. Not the experiment's numbers."""
import math

import numpy as np
import pytest

pytest.importorskip("sklearn")

from minigrad.app.experiments import learning_rate as lr  # noqa: E402

CHANCE = 0.1


def test_grid_is_quarter_decades_from_0_001_to_10():
    rates = lr.rates_grid(quick=False)
    assert len(rates) == 17
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(10.0)
    assert np.diff(np.log10(rates)) == pytest.approx(np.full(16, 0.25))
    quick = lr.rates_grid(quick=True)
    assert quick[0] == pytest.approx(0.01) and quick[-1] == pytest.approx(10.0)
    assert np.diff(np.log10(quick)) == pytest.approx(np.full(len(quick) - 1, 0.5))


def test_status_of_each_kind_of_run():
    descending = list(np.linspace(2.3, 0.05, 50))
    assert lr.status(descending, False, 0.97, CHANCE) == lr.TRAINS
    assert lr.status(descending[:10] + [math.nan], True, CHANCE, CHANCE) == lr.DIVERGED
    # blew up to 10x its start and stayed there, at chance: collapsed, though no NaN
    blown = [2.3, 8.0, 24.0, 5.0] + [2.35] * 40
    assert lr.status(blown, False, 0.12, CHANCE) == lr.COLLAPSED
    # a tiny rate: near chance too, but the loss never rose -- slow, not collapsed
    slow = list(np.linspace(2.30, 2.27, 50))
    assert lr.status(slow, False, 0.14, CHANCE) == lr.FAILS
    # blew up, then half recovered (above chance + 20 points): fails, not collapsed
    assert lr.status(blown[:4] + [1.2] * 40, False, 0.55, CHANCE) == lr.FAILS
    # a loss that rose but less than twice its start is not a blow-up
    assert lr.status([2.3, 4.5, 2.3], False, 0.1, CHANCE) == lr.FAILS


def test_largest_trainable_rate():
    rates = [0.01, 0.1, 1.0, 10.0]
    assert lr.largest_trainable(rates, [0.5, 0.95, 0.93, 0.1]) == 1.0
    # the largest that trains, even past a rate that does not (the grid is not smoothed)
    assert lr.largest_trainable(rates, [0.95, 0.2, 0.91, 0.1]) == 1.0
    assert lr.largest_trainable(rates, [0.95, 0.95, 0.95, 0.95]) == 10.0  # a lower bound
    # none trains: one grid step below the smallest rate
    assert lr.largest_trainable(rates, [0.5, 0.5, 0.1, 0.1]) == pytest.approx(0.001)
    assert lr.largest_trainable(rates, [0.89, 0.9, 0.1, 0.1]) == 0.1  # threshold inclusive


def test_record_steps():
    assert lr.record_steps(10, 5, every=2, fine_epochs=1) == [0, 2, 4, 5, 10]
    at = lr.record_steps(252, 21)
    assert at[:3] == [0, 3, 6] and 84 in at and 87 not in at and at[-2:] == [231, 252]


def test_steps_to_target():
    at = [0, 3, 6, 9, 30]
    assert lr.steps_to_target([0.1, 0.5, 0.96, 0.97, 0.98], at, 0.95) == 6
    assert lr.steps_to_target([0.1, 0.5, 0.9, 0.94, 0.95], at, 0.95) == 30
    # never reached: one record interval past the end, so it still counts as slowest
    assert lr.steps_to_target([0.1, 0.5, 0.9, 0.94, 0.94], at, 0.95) == 51


def test_fastest_rate_is_the_fewest_mean_steps():
    steps = [[100, 90, 110], [30, 60, 45], [40, 40, 40], [300, 300, 300]]
    assert lr.fastest_rate(steps) == 2
    assert lr.fastest_rate([[30, 30], [30, 30]]) == 0  # a tie goes to the smaller rate
