"""The experiments' verdict rule (minigrad.app.experiments.verdict): planted differences are
found, noise alone is "not shown", a reversed effect is "contradicted", one seed is only
indicative."""
import numpy as np
import pytest

from minigrad.app.experiments.verdict import (CONTRADICTED, INDICATIVE, NOT_SHOWN, REPRODUCED,
                                              Claim, judge, t_interval)

LOWER_LOSS = Claim("test loss", "BatchNorm", "no norm", predicts="negative")


def _arms(effect, seeds, rng, noise=1.0):
    """Two arms sharing per-seed variation (what pairing by seed removes) plus own noise."""
    shared = rng.normal(0, 5, seeds)
    return shared + effect + rng.normal(0, noise, seeds), shared + rng.normal(0, noise, seeds)


def test_a_planted_difference_is_reproduced_in_the_predicted_direction():
    rng = np.random.default_rng(0)
    found = [judge(LOWER_LOSS, *_arms(-4.0, 5, rng)).label for _ in range(200)]
    assert found.count(REPRODUCED) / len(found) > 0.95


def test_noise_alone_is_not_shown_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    labels = [judge(LOWER_LOSS, *_arms(0.0, 5, rng)).label for _ in range(2000)]
    false_positive = labels.count(REPRODUCED) / len(labels)
    assert labels.count(NOT_SHOWN) / len(labels) > 0.9
    assert 0.005 < false_positive < 0.05  # one side of a 95% interval: about 2.5%


def test_an_effect_the_other_way_is_contradicted():
    rng = np.random.default_rng(2)
    verdict = judge(LOWER_LOSS, *_arms(+3.0, 8, rng))
    assert verdict.label == CONTRADICTED and verdict.reproduced is False
    assert verdict.agreeing <= 1 and verdict.low > 0


def test_a_minimum_effect_must_be_cleared_not_just_zero():
    claim = Claim("accuracy", "BN", "none", predicts="positive", minimum_effect=1.0, unit="%")
    small = judge(claim, [10.4, 10.5, 10.6, 10.5, 10.5], [10.0] * 5)  # +0.5 +- 0.1: real, small
    assert small.label == NOT_SHOWN
    large = judge(claim, [12.0, 12.2, 11.9, 12.1, 12.0], [10.0] * 5)
    assert large.label == REPRODUCED and "95% CI [+1.9, +2.18]%" in str(large)


def test_one_seed_is_only_indicative():
    verdict = judge(LOWER_LOSS, [0.1], [0.3])
    assert verdict.label == INDICATIVE and verdict.low is None and verdict.reproduced is None
    assert str(verdict).startswith("indicative (1 seed): test loss BatchNorm - no norm = -0.2")


def test_the_interval_is_students_t():
    mean, low, high = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776 * np.std([1, 2, 3, 4, 5], ddof=1) / np.sqrt(5)
    assert mean == 3.0 and low == pytest.approx(3 - half) and high == pytest.approx(3 + half)


def test_bad_measurements_are_refused():
    with pytest.raises(ValueError, match="one value per seed"):
        judge(LOWER_LOSS, [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="non-finite"):
        judge(LOWER_LOSS, [1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="predicts must be"):
        Claim("x", "a", "b", predicts="up")


def test_the_rule_reads_as_a_sentence():
    assert LOWER_LOSS.rule == ("test loss: BatchNorm - no norm, paired by seed; reproduced if "
                               "the 95% t interval of the mean difference is < -0, "
                               "contradicted if it excludes 0 on the other side")
