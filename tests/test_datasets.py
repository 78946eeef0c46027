"""Tests of the offline datasets, their stratified split and the feature scaler."""

import math
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris

from experiments import datasets
from experiments.datasets import (
    DATASET_NAMES,
    Dataset,
    FeatureScaler,
    load_dataset,
    standardize,
)

# name: (total samples with n_samples=500, features, classes)
EXPECTED_SIZES = {
    "iris": (150, 4, 3),
    "moons": (500, 2, 2),
    "circles": (500, 2, 2),
    "ring": (500, 2, 2),
    "digits": (1797, 64, 10),
}


def test_dataset_names_cover_all_loaders():
    assert set(DATASET_NAMES) == set(EXPECTED_SIZES)


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_load_dataset_shapes_and_dtypes(name):
    total, n_features, n_classes = EXPECTED_SIZES[name]
    dataset = load_dataset(name, n_samples=500, test_fraction=0.2, seed=0)
    n_test = math.ceil(0.2 * total)

    assert dataset.name == name
    assert dataset.n_features == n_features
    assert dataset.n_classes == n_classes
    assert dataset.x_train.shape == (total - n_test, n_features)
    assert dataset.x_test.shape == (n_test, n_features)
    assert dataset.y_train.shape == (total - n_test,)
    assert dataset.y_test.shape == (n_test,)
    assert dataset.x_train.dtype == np.float64
    assert dataset.y_train.dtype == np.int64
    assert dataset.n_train == total - n_test
    assert dataset.n_test == n_test


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_load_dataset_labels_cover_all_classes(name):
    dataset = load_dataset(name, seed=0)
    expected = np.arange(dataset.n_classes)

    np.testing.assert_array_equal(np.unique(dataset.y_train), expected)
    np.testing.assert_array_equal(np.unique(dataset.y_test), expected)


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_split_class_balance_is_proportional(name):
    dataset = load_dataset(name, n_samples=301, test_fraction=0.3, seed=4)
    y_all = np.concatenate([dataset.y_train, dataset.y_test])
    total = y_all.size

    for split_labels in (dataset.y_train, dataset.y_test):
        for label in range(dataset.n_classes):
            class_total = np.count_nonzero(y_all == label)
            proportional = class_total * split_labels.size / total
            count = np.count_nonzero(split_labels == label)
            assert abs(count - proportional) <= 1, (name, label, count, proportional)


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_same_seed_gives_identical_arrays(name):
    first = load_dataset(name, seed=7)
    second = load_dataset(name, seed=7)

    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_train, second.y_train)
    np.testing.assert_array_equal(first.x_test, second.x_test)
    np.testing.assert_array_equal(first.y_test, second.y_test)


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_different_seeds_give_different_splits(name):
    first = load_dataset(name, seed=0)
    second = load_dataset(name, seed=1)

    assert not np.array_equal(first.x_train, second.x_train)
    assert not np.array_equal(first.x_test, second.x_test)


def test_split_uses_every_sample_once():
    dataset = load_dataset("iris", seed=3)
    x_all = np.concatenate([dataset.x_train, dataset.x_test])
    # Iris has duplicate rows, so compare sorted rows with the bundled data.
    reference = load_iris().data
    sorted_split = x_all[np.lexsort(x_all.T[::-1])]
    sorted_reference = reference[np.lexsort(reference.T[::-1])]
    np.testing.assert_array_equal(sorted_split, sorted_reference)


def test_moons_without_noise_lie_on_unit_circles():
    dataset = load_dataset("moons", n_samples=200, noise=0.0, seed=0)
    x = np.concatenate([dataset.x_train, dataset.x_test])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    # The upper moon is centred on (0, 0) and the lower moon on (1, 0.5), radius 1.
    upper = x[y == 0]
    lower = x[y == 1] - np.array([1.0, 0.5])

    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.hypot(lower[:, 0], lower[:, 1]), 1.0, atol=1e-12)


def test_circles_without_noise_have_radii_one_and_half():
    dataset = load_dataset("circles", n_samples=200, noise=0.0, seed=0)
    x = np.concatenate([dataset.x_train, dataset.x_test])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    radius = np.hypot(x[:, 0], x[:, 1])

    np.testing.assert_allclose(radius[y == 0], 1.0, atol=1e-12)
    np.testing.assert_allclose(radius[y == 1], 0.5, atol=1e-12)


def test_moons_noise_moves_points_off_circles():
    dataset = load_dataset("moons", n_samples=200, noise=0.2, seed=0)
    x = np.concatenate([dataset.x_train, dataset.x_test])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    radius = np.hypot(x[y == 0, 0], x[y == 0, 1])

    assert np.max(np.abs(radius - 1.0)) > 0.1


def test_ring_inner_class_is_inside_outer_class():
    dataset = load_dataset("ring", n_samples=400, seed=2)
    x = np.concatenate([dataset.x_train, dataset.x_test])
    y = np.concatenate([dataset.y_train, dataset.y_test])
    radius = np.hypot(x[:, 0], x[:, 1])

    assert np.count_nonzero(y == 0) == 200
    assert np.count_nonzero(y == 1) == 200
    assert radius[y == 0].max() <= radius[y == 1].min()


def test_unknown_name_raises_with_known_names():
    with pytest.raises(ValueError, match="unknown dataset name 'mnist'") as error:
        load_dataset("mnist")

    for name in DATASET_NAMES:
        assert name in str(error.value)


@pytest.mark.parametrize(
    ("name", "n_samples", "minimum"),
    [("moons", 3, 4), ("circles", 0, 4), ("digits", 19, 20), ("iris", 5, 6)],
)
def test_too_few_samples_raises(name, n_samples, minimum):
    with pytest.raises(ValueError, match=rf"n_samples .*>= {minimum}.*{n_samples}"):
        load_dataset(name, n_samples=n_samples)


@pytest.mark.parametrize("test_fraction", [0.0, 1.0, -0.1, 1.5])
def test_test_fraction_outside_unit_interval_raises(test_fraction):
    with pytest.raises(ValueError, match=rf"test_fraction .*\(0, 1\).*{test_fraction}"):
        load_dataset("moons", test_fraction=test_fraction)


@pytest.mark.parametrize("noise", [-0.1, math.nan, math.inf])
def test_invalid_noise_raises(noise):
    with pytest.raises(
        ValueError, match=rf"noise must be finite and >= 0, got {noise}"
    ):
        load_dataset("moons", noise=noise)


def test_non_integer_n_samples_raises():
    with pytest.raises(ValueError, match=r"n_samples must be an integer .*12\.5"):
        load_dataset("moons", n_samples=12.5)


def test_negative_seed_raises():
    with pytest.raises(
        ValueError, match=r"seed must be an integer in \[0, 2\*\*32\).*-1"
    ):
        load_dataset("moons", seed=-1)


def test_split_too_small_for_stratification_raises():
    # ceil(0.2 * 4) = 1 test sample cannot hold one sample of each of 2 classes.
    with pytest.raises(ValueError, match="1 test samples.*at least 2"):
        load_dataset("moons", n_samples=4, test_fraction=0.2)


def test_nan_from_loader_raises(monkeypatch):
    def make_nan_moons(n_samples, noise, seed):
        x = np.zeros((n_samples, 2))
        x[3, 1] = np.nan
        y = np.arange(n_samples) % 2
        return x, y

    monkeypatch.setitem(datasets._LOADERS, "moons", make_nan_moons)

    with pytest.raises(ValueError, match="'moons' produced 1 NaN"):
        load_dataset("moons", n_samples=20)


def test_dataset_with_nan_features_raises():
    x = np.array([[0.0, np.nan], [1.0, 2.0]])
    y = np.array([0, 1])

    with pytest.raises(ValueError, match="x_train .* contains 1 NaN"):
        Dataset("toy", x, y, x[1:], y[1:], n_classes=2, n_features=2)


def test_dataset_with_label_out_of_range_raises():
    x = np.zeros((2, 2))
    y = np.array([0, 2])

    with pytest.raises(ValueError, match=r"labels in \[0, 2\], expected 0\.\.1"):
        Dataset("toy", x, y, x, np.array([0, 1]), n_classes=2, n_features=2)


def test_scaler_standardises_training_set():
    dataset = load_dataset("digits", seed=0)
    scaler = FeatureScaler.fit(dataset.x_train)
    scaled = scaler.transform(dataset.x_train)
    varying = dataset.x_train.std(axis=0) > 0

    np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(scaled.std(axis=0)[varying], 1.0, rtol=1e-12)


def test_scaler_maps_constant_feature_to_zero():
    x = np.array([[5.0, 1.0], [5.0, 3.0]])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaler = FeatureScaler.fit(x)
        scaled = scaler.transform(x)

    np.testing.assert_array_equal(scaler.scale, [1.0, 1.0])
    np.testing.assert_array_equal(scaled, [[0.0, -1.0], [0.0, 1.0]])


def test_standardize_applies_training_statistics_to_test_set():
    x_train = np.array([[1.0, 10.0], [3.0, 30.0]])
    x_test = np.array([[3.0, 0.0], [5.0, 20.0]])

    train_scaled, test_scaled = standardize(x_train, x_test)

    # Training mean (2, 20) and population std (1, 10).
    np.testing.assert_array_equal(train_scaled, [[-1.0, -1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(test_scaled, [[1.0, -2.0], [3.0, 0.0]])


def test_scaler_rejects_wrong_feature_count():
    scaler = FeatureScaler.fit(np.zeros((3, 2)))

    with pytest.raises(ValueError, match="must have 2 features .* got 3"):
        scaler.transform(np.zeros((1, 3)))


def test_scaler_rejects_nan():
    with pytest.raises(ValueError, match="x contains 1 NaN or infinite"):
        FeatureScaler.fit(np.array([[1.0], [np.nan]]))
