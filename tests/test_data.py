"""DataLoader batching and shuffling; the bundled and synthetic data sets."""
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import DataLoader, load_digits, make_moons, make_spirals, split


def _toy(n=10):
    return np.arange(n * 2, dtype=np.float64).reshape(n, 2), np.arange(n) % 3


def test_batches_cover_the_data_in_order():
    features, labels = _toy(10)
    loader = DataLoader((features, labels), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([x.data for x, _ in batches]), features)
    np.testing.assert_array_equal(np.concatenate([y.data for _, y in batches]), labels)


def test_drop_last():
    loader = DataLoader(_toy(10), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [len(x) for x, _ in loader] == [4, 4]
    assert len(DataLoader(_toy(8), batch_size=4, drop_last=True)) == 2


def test_dtypes_default_and_given():
    features, labels = _toy()
    x, y = next(iter(DataLoader((features, labels.astype(np.int32)), batch_size=3)))
    assert isinstance(x, mg.Tensor) and x.dtype == mg.get_default_dtype()
    assert y.dtype == np.int64
    x, _ = next(iter(DataLoader((features, labels), batch_size=3, dtype=np.float32)))
    assert x.dtype == np.float32 and not x.requires_grad


def test_shuffle_is_a_seeded_permutation_that_changes_every_pass():
    features, labels = _toy(50)
    loader = DataLoader((features, labels), batch_size=8, shuffle=True, seed=3)
    first = np.concatenate([x.data[:, 0] for x, _ in loader])
    second = np.concatenate([x.data[:, 0] for x, _ in loader])
    assert sorted(first) == sorted(features[:, 0])  # every sample exactly once
    assert not np.array_equal(first, features[:, 0])
    assert not np.array_equal(first, second)
    again = DataLoader((features, labels), batch_size=8, shuffle=True, seed=3)
    np.testing.assert_array_equal(np.concatenate([x.data[:, 0] for x, _ in again]), first)
    # Rows stay aligned with their labels after shuffling.
    for x, y in DataLoader((features, labels), batch_size=8, shuffle=True, seed=4):
        np.testing.assert_array_equal((x.data[:, 0] // 2) % 3, y.data)


@pytest.mark.parametrize("arrays, batch_size, error, message", [
    (np.ones((4, 2)), 2, TypeError, "expected a tuple of arrays"),
    ((), 2, TypeError, "expected a tuple of arrays"),
    ((np.ones((4, 2)), np.ones(3, dtype=int)), 2, ValueError, r"different lengths \[4, 3\]"),
    ((np.ones((4, 2)),), 0, ValueError, "batch_size must be a positive integer, got 0"),
    ((np.ones((4, 2)),), 2.5, ValueError, "batch_size must be a positive integer"),
    ((np.array(["a", "b"]),), 1, TypeError, r"DataLoader \(array 0\): data must be numbers.*dtype <U1"),
    ((np.ones(4), np.float64(1.0)), 1, ValueError, "array 1 is a scalar"),
])
def test_bad_loader_arguments(arrays, batch_size, error, message):
    with pytest.raises(error, match=message):
        DataLoader(arrays, batch_size=batch_size)


def test_split_is_a_seeded_partition():
    features, labels = _toy(20)
    data = split("toy", features, labels, test_fraction=0.25, seed=1)
    assert len(data.x_test) == 5 and len(data.x_train) == 15
    rows = np.concatenate([data.x_train, data.x_test])[:, 0]
    assert sorted(rows) == sorted(features[:, 0])
    np.testing.assert_array_equal(split("toy", features, labels, 0.25, seed=1).x_test,
                                  data.x_test)
    with pytest.raises(ValueError, match="test_fraction must be between 0 and 1"):
        split("toy", features, labels, test_fraction=1.0)
    with pytest.raises(ValueError, match=r"features of shape \(20, 2\) and 19 labels"):
        split("toy", features, labels[:-1])


def test_digits_are_standardised_with_training_statistics():
    digits = load_digits()
    assert digits.n_classes == 10 and digits.input_shape == (64,)
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert len(digits.x_test) == round(0.25 * 1797)
    assert set(np.unique(digits.y_train)) == set(range(10))
    mean, std = digits.x_train.mean(axis=0), digits.x_train.std(axis=0)
    varying = std > 0
    np.testing.assert_allclose(mean, 0, atol=1e-12)
    np.testing.assert_allclose(std[varying], 1)
    assert abs(digits.x_test.mean()) < 0.2  # same preprocessing, unseen rows
    images = load_digits(images=True)
    assert images.x_train.shape[1:] == (1, 8, 8)
    np.testing.assert_array_equal(images.x_train.reshape(-1, 64), digits.x_train)


def test_digits_without_scikit_learn_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r'pip install "minigrad\[examples\]"'):
        load_digits()


def test_moons():
    features, labels = make_moons(101, noise=0.0, seed=0)
    assert features.shape == (101, 2) and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [50, 51]
    upper, lower = features[labels == 0], features[labels == 1]
    # Noise-free: points lie on unit half circles centred at (0, 0) and (1, 0.5).
    np.testing.assert_allclose(np.hypot(*upper.T), 1)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1)
    assert np.all(upper[:, 1] >= 0) and np.all(lower[:, 1] <= 0.5)
    noisy, _ = make_moons(101, noise=0.1, seed=0)
    assert 0 < np.abs(noisy - features).mean() < 0.2
    np.testing.assert_array_equal(make_moons(101, noise=0.1, seed=0)[0], noisy)


def test_spirals():
    features, labels = make_spirals(300, n_classes=3, noise=0.0, seed=0)
    assert features.shape == (300, 2)
    assert np.bincount(labels).tolist() == [100, 100, 100]
    radius = np.hypot(*features.T)
    assert radius.max() <= 1
    # Without noise each arm's angle is 3*pi*radius plus the arm's offset.
    angle = np.arctan2(features[:, 1], features[:, 0])
    expected = 3 * np.pi * radius + 2 * np.pi * labels / 3
    np.testing.assert_allclose(np.cos(angle - expected)[radius > 1e-9], 1, atol=1e-9)
    with pytest.raises(ValueError, match="n_classes must be at least 2"):
        make_spirals(10, n_classes=1)
