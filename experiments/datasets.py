"""Offline classification datasets and a feature scaler fitted on the training set.

Every dataset comes from scikit-learn's bundled data (iris, digits) or its synthetic
generators (moons, circles, ring), so nothing is downloaded. Features are returned raw;
the caller fits a `FeatureScaler` on the training split and applies it to both splits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import datasets as sk_datasets
from sklearn.model_selection import train_test_split

logger = logging.getLogger(__name__)

DATASET_NAMES: tuple[str, ...] = ("iris", "moons", "circles", "ring", "digits")
"""Names accepted by `load_dataset`."""

# Ratio of the inner to the outer circle radius in the "circles" dataset.
_CIRCLES_FACTOR = 0.5


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset split into training and test sets.

    Attributes:
        name: dataset name, one of `DATASET_NAMES` for datasets from `load_dataset`.
        x_train: training features, float64 array of shape (n_train, n_features).
        y_train: training labels, int64 array of shape (n_train,) with values in
            0..n_classes-1.
        x_test: test features, float64 array of shape (n_test, n_features).
        y_test: test labels, int64 array of shape (n_test,).
        n_classes: number of classes C.
        n_features: number of input features.

    Raises:
        ValueError: if shapes disagree, a feature is NaN or infinite, or a label lies
            outside 0..n_classes-1.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    n_features: int

    def __post_init__(self) -> None:
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {self.n_classes}")
        if self.n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {self.n_features}")
        _check_split(self, "train", self.x_train, self.y_train)
        _check_split(self, "test", self.x_test, self.y_test)

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples."""
        return int(self.x_test.shape[0])


def _check_split(dataset: Dataset, split: str, x: np.ndarray, y: np.ndarray) -> None:
    """Raise ValueError unless x and y form a valid split of `dataset`."""
    if x.ndim != 2 or x.shape[1] != dataset.n_features:
        raise ValueError(
            f"x_{split} of dataset {dataset.name!r} must have shape "
            f"(n, {dataset.n_features}), got {x.shape}"
        )
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"y_{split} of dataset {dataset.name!r} must have shape ({x.shape[0]},) "
            f"to match x_{split}, got {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"y_{split} of dataset {dataset.name!r} must have an integer dtype, "
            f"got {y.dtype}"
        )
    if not np.all(np.isfinite(x)):
        n_bad = int(np.count_nonzero(~np.isfinite(x)))
        raise ValueError(
            f"x_{split} of dataset {dataset.name!r} contains {n_bad} NaN or infinite "
            "values"
        )
    if y.size and (y.min() < 0 or y.max() >= dataset.n_classes):
        raise ValueError(
            f"y_{split} of dataset {dataset.name!r} has labels in "
            f"[{y.min()}, {y.max()}], expected 0..{dataset.n_classes - 1}"
        )


def load_dataset(
    name: str,
    *,
    n_samples: int = 500,
    noise: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Load or generate a dataset and split it into stratified training and test sets.

    Datasets:
        "iris": scikit-learn's iris set, 150 samples, 4 features, 3 classes.
        "digits": scikit-learn's 8x8 digits set, 1797 samples, 64 pixel features with
            values 0..16, 10 classes.
        "moons": two interleaving half circles, 2 features, 2 classes.
        "circles": two concentric circles with radius ratio 0.5, 2 features, 2 classes.
        "ring": an isotropic Gaussian split into a central disc and a surrounding ring
            of equal probability (`make_gaussian_quantiles`), 2 features, 2 classes.

    `n_samples` applies to moons, circles and ring only, and `noise` (standard deviation
    of Gaussian noise added to the points) to moons and circles only. The other datasets
    ignore them, but the values are still validated. The same `seed` drives the
    generator and the split, so equal arguments give identical arrays.

    Args:
        name: dataset name, one of `DATASET_NAMES`.
        n_samples: total number of generated samples before the split.
        noise: standard deviation of the Gaussian noise on generated points.
        test_fraction: fraction of the samples put in the test set, in (0, 1). The
            test set size is rounded up, as in scikit-learn's `train_test_split`.
        seed: seed of the generator and of the split.

    Returns:
        The dataset with raw (unscaled) float64 features and int64 labels.

    Raises:
        ValueError: for an unknown name, n_samples below 2 per class, a test_fraction
            outside (0, 1), a negative or non-finite noise, a split that leaves fewer
            samples than classes in either set, or NaN or infinite features.
    """
    if name not in DATASET_NAMES:
        raise ValueError(
            f"unknown dataset name {name!r}; known names are {', '.join(DATASET_NAMES)}"
        )
    n_classes = _N_CLASSES[name]
    _validate_load_arguments(name, n_classes, n_samples, noise, test_fraction, seed)

    x, y = _LOADERS[name](n_samples, noise, seed)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    if not np.all(np.isfinite(x)):
        raise ValueError(
            f"dataset {name!r} produced {int(np.count_nonzero(~np.isfinite(x)))} NaN "
            "or infinite feature values"
        )
    _validate_split_sizes(name, n_classes, x.shape[0], test_fraction)

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    logger.debug(
        "loaded dataset %s: %d training and %d test samples, %d features, seed %d",
        name,
        x_train.shape[0],
        x_test.shape[0],
        x.shape[1],
        seed,
    )
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        n_classes=n_classes,
        n_features=int(x.shape[1]),
    )


def _validate_load_arguments(
    name: str,
    n_classes: int,
    n_samples: int,
    noise: float,
    test_fraction: float,
    seed: int,
) -> None:
    """Raise ValueError naming the first invalid argument of `load_dataset`."""
    minimum_samples = 2 * n_classes
    if not _is_integer(n_samples) or n_samples < minimum_samples:
        raise ValueError(
            f"n_samples must be an integer >= {minimum_samples} (2 per class) for "
            f"dataset {name!r}, got {n_samples!r}"
        )
    if not math.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be finite and >= 0, got {noise}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if not _is_integer(seed) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")


def _is_integer(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _validate_split_sizes(
    name: str, n_classes: int, n_total: int, test_fraction: float
) -> None:
    """Raise ValueError unless both sets of a stratified split get a sample per class.

    The sizes follow `train_test_split`: the test set has ceil(test_fraction * n)
    samples and the training set the rest.
    """
    n_test = math.ceil(test_fraction * n_total)
    n_train = n_total - n_test
    if n_test < n_classes or n_train < n_classes:
        raise ValueError(
            f"test_fraction {test_fraction} splits the {n_total} samples of dataset "
            f"{name!r} into {n_train} training and {n_test} test samples, but a "
            f"stratified split needs at least {n_classes} (one per class) in each; "
            "increase n_samples or move test_fraction towards 0.5"
        )


def _load_iris(
    n_samples: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    bunch = sk_datasets.load_iris()
    return bunch.data, bunch.target


def _load_digits(
    n_samples: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    bunch = sk_datasets.load_digits()
    return bunch.data, bunch.target


def _make_moons(
    n_samples: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    return sk_datasets.make_moons(n_samples=n_samples, noise=noise, random_state=seed)


def _make_circles(
    n_samples: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    return sk_datasets.make_circles(
        n_samples=n_samples, noise=noise, factor=_CIRCLES_FACTOR, random_state=seed
    )


def _make_ring(
    n_samples: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    return sk_datasets.make_gaussian_quantiles(
        n_samples=n_samples, n_features=2, n_classes=2, random_state=seed
    )


_LoaderFunction = Callable[[int, float, int], tuple[np.ndarray, np.ndarray]]

_LOADERS: dict[str, _LoaderFunction] = {
    "iris": _load_iris,
    "moons": _make_moons,
    "circles": _make_circles,
    "ring": _make_ring,
    "digits": _load_digits,
}

_N_CLASSES: dict[str, int] = {
    "iris": 3,
    "moons": 2,
    "circles": 2,
    "ring": 2,
    "digits": 10,
}


@dataclass(frozen=True, eq=False)
class FeatureScaler:
    """Per-feature standardisation (x - mean) / scale, fitted on a training set.

    Attributes:
        mean: per-feature mean of the fitted data, shape (n_features,).
        scale: per-feature population standard deviation of the fitted data, shape
            (n_features,). A constant feature gets scale 1, so it maps to 0 instead of
            dividing by zero.
    """

    mean: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        if self.mean.ndim != 1 or self.scale.shape != self.mean.shape:
            raise ValueError(
                "mean and scale must be 1-D arrays of equal length, got shapes "
                f"{self.mean.shape} and {self.scale.shape}"
            )
        if not np.all(np.isfinite(self.mean)) or not np.all(np.isfinite(self.scale)):
            raise ValueError("mean and scale must be finite")
        if np.any(self.scale <= 0):
            raise ValueError(f"scale must be > 0 for every feature, got {self.scale}")

    @classmethod
    def fit(cls, x: np.ndarray) -> FeatureScaler:
        """Fit the per-feature mean and standard deviation of `x`.

        Args:
            x: features of shape (n_samples, n_features), n_samples >= 1.

        Raises:
            ValueError: if x is not 2-D, has no rows, or contains NaN or infinity.
        """
        x = _as_feature_matrix(x, "x")
        if x.shape[0] == 0:
            raise ValueError(
                "x must contain at least one sample to fit a FeatureScaler"
            )
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        # A feature whose spread is at rounding level of its mean is constant.
        tolerance = np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        scale = np.where(std > tolerance, std, 1.0)
        return cls(mean=mean, scale=scale)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Return the standardised copy (x - mean) / scale of `x`.

        Raises:
            ValueError: if x is not 2-D with n_features columns, or contains NaN or
                infinity.
        """
        x = _as_feature_matrix(x, "x")
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"x must have {self.mean.shape[0]} features to match the fitted "
                f"scaler, got {x.shape[1]}"
            )
        return (x - self.mean) / self.scale


def standardize(
    x_train: np.ndarray, x_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Standardise both sets with the mean and standard deviation of the training set.

    Returns:
        The scaled training and test features, as new float64 arrays.

    Raises:
        ValueError: as `FeatureScaler.fit` and `FeatureScaler.transform`.
    """
    scaler = FeatureScaler.fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_test)


def _as_feature_matrix(x: np.ndarray, label: str) -> np.ndarray:
    """Return x as a float64 2-D array, raising ValueError if it is not finite."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{label} must be 2-D (n_samples, n_features), got {x.shape}")
    if not np.all(np.isfinite(x)):
        n_bad = int(np.count_nonzero(~np.isfinite(x)))
        raise ValueError(f"{label} contains {n_bad} NaN or infinite values")
    return x
