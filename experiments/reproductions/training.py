"""Training pieces shared by the training reproductions.

A training point builds everything it needs from its sweep parameters and its
SeedSequence: an experiment config (the ``config`` parameter, in the layout of the TOML
experiment configs), the encoded data, the chips, and the training itself, all in
memory. Two ways of training are offered:

- offline: Adam or SGD on the exact gradient of the realised devices
  (``photonic.reference.exact_gradient``), the in-silico training of a nominal model;
- in situ: the ``Trainer`` of ``experiments.train``, which measures every gradient on
  the chip by the three optical passes at the times the SimPy schedule gives.

Trained phases move from one network to another with ``deploy``, which programs them
unchanged into chips of another hardware model.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from experiments.config import ExperimentConfig
from experiments.datasets import Dataset
from experiments.train import Trainer, build_network, evaluate, prepare
from photonic.encoding import AmplitudeEncoder
from photonic.hardware import HardwareConfig
from photonic.network import PhotonicNetwork
from photonic.optim import make_optimizer
from photonic.reference import exact_gradient, programmed_gradients

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PointSeeds:
    """The random streams of one training point, spawned from the point's SeedSequence.

    Attributes:
        data_seed: integer seed of the dataset generator and of its train/test split.
        chips: SeedSequence of the chips (one child per layer is spawned from a copy).
        shuffle: SeedSequence of the mini-batch order of the first training stage.
        shuffle_second: SeedSequence of the mini-batch order of a second stage (in situ
            training after offline training).
    """

    data_seed: int
    chips: np.random.SeedSequence
    shuffle: np.random.SeedSequence
    shuffle_second: np.random.SeedSequence

    @classmethod
    def spawn(cls, seed: np.random.SeedSequence) -> PointSeeds:
        """Spawn the streams of a point from its SeedSequence.

        The children depend on how many children ``seed`` has spawned before, so a
        point calls this once, first.
        """
        data, chips, shuffle, shuffle_second = seed.spawn(4)
        return cls(
            data_seed=int(data.generate_state(1)[0]),
            chips=chips,
            shuffle=shuffle,
            shuffle_second=shuffle_second,
        )

    def chip_sequence(self) -> np.random.SeedSequence:
        """Return a fresh copy of the chip SeedSequence.

        ``SeedSequence.spawn`` advances its parent, so every network built from this
        copy gets the same per-layer chip seeds, whichever networks were built before.
        """
        return np.random.SeedSequence(
            self.chips.entropy, spawn_key=self.chips.spawn_key
        )


def merge_mappings(
    base: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """Merge ``overrides`` into a deep copy of ``base``, table by table at every depth."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_mappings(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def build_config(
    values: Mapping[str, Any], data_seed: int, name: str = "reproduction"
) -> ExperimentConfig:
    """Build an experiment config from a mapping in the layout of the TOML configs.

    ``data_seed`` becomes the config's seed, which seeds the dataset generator and its
    split (``experiments.train.prepare``). ``name`` appears only in log lines.

    Raises:
        ValueError: for an unknown key or an invalid value, as
            ``ExperimentConfig.from_mapping``.
    """
    return ExperimentConfig.from_mapping({**values, "name": name, "seed": data_seed})


@dataclass
class EncodedData:
    """A dataset split and its input fields, encoded by an encoder fitted on the
    training features."""

    dataset: Dataset
    encoder: AmplitudeEncoder
    x_train: np.ndarray
    x_test: np.ndarray

    @property
    def y_train(self) -> np.ndarray:
        """Training labels."""
        return self.dataset.y_train

    @property
    def y_test(self) -> np.ndarray:
        """Test labels."""
        return self.dataset.y_test


def load_encoded(config: ExperimentConfig) -> tuple[ExperimentConfig, EncodedData]:
    """Load the config's dataset, resolve the config against it and encode both splits.

    Returns:
        The resolved config (mesh size and output groups filled in) and the data.

    Raises:
        ValueError: for a config that does not fit the dataset.
    """
    resolved, dataset = prepare(config)
    network = resolved.network
    encoder = AmplitudeEncoder(network.n_modes, network.input_power, network.input_fill)
    encoder.fit(dataset.x_train)
    return resolved, EncodedData(
        dataset=dataset,
        encoder=encoder,
        x_train=encoder.transform(dataset.x_train),
        x_test=encoder.transform(dataset.x_test),
    )


def network_on(
    config: ExperimentConfig,
    hardware: HardwareConfig,
    seeds: PointSeeds,
) -> PhotonicNetwork:
    """Build the config's network on chips of ``hardware`` from the point's chip seeds.

    Networks built from the same seeds have the same initial phases whatever their
    hardware, because a chip draws its initial phases from a stream of its own.
    """
    return build_network(replace(config, hardware=hardware), seeds.chip_sequence())


def deploy(
    phases: list[np.ndarray],
    config: ExperimentConfig,
    hardware: HardwareConfig,
    seeds: PointSeeds,
) -> PhotonicNetwork:
    """Program trained phases unchanged into a network on chips of ``hardware``."""
    network = network_on(config, hardware, seeds)
    network.set_phases([np.array(p, dtype=float) for p in phases])
    return network


def accuracy(network: PhotonicNetwork, x: np.ndarray, labels: np.ndarray) -> float:
    """Return the classification accuracy measured on the chip, with one noisy forward
    pass per layer."""
    _, value = evaluate(network, x, labels)
    return value


def _batches(
    rng: np.random.Generator, n_samples: int, batch_size: int
) -> list[np.ndarray]:
    order = rng.permutation(n_samples)
    return [order[i : i + batch_size] for i in range(0, n_samples, batch_size)]


def train_offline(
    network: PhotonicNetwork,
    data: EncodedData,
    config: ExperimentConfig,
    shuffle_seed: np.random.SeedSequence,
    epochs: int | None = None,
) -> list[float]:
    """Train the network's phases on exact gradients of its realised devices.

    This is in-silico training: every step computes the exact gradient of the batch loss
    (``photonic.reference.exact_gradient``, no measurement noise), converts it to the
    programmed phases, and updates them with the config's optimizer and learning rate.
    Phases that cannot change the loss (``PhotonicNetwork.trainable_masks``) stay fixed.

    Args:
        network: the network to train in place, usually on an ideal chip.
        data: encoded training and test data.
        config: the resolved config. Its ``training`` section sets the optimizer,
            learning rate, batch size and, unless ``epochs`` is given, the epochs.
        shuffle_seed: seed of the mini-batch order.
        epochs: number of epochs, overriding the config.

    Returns:
        Test accuracy after every epoch.
    """
    training = config.training
    epochs = training.epochs if epochs is None else epochs
    optimizer = make_optimizer(training.optimizer, training.learning_rate)
    masks = network.trainable_masks()
    rng = np.random.default_rng(shuffle_seed)
    curve = []
    for _ in range(epochs):
        for batch in _batches(rng, len(data.x_train), training.batch_size):
            exact = exact_gradient(
                network.devices(),
                network.activation,
                network.loss,
                data.x_train[batch],
                data.y_train[batch],
            )
            gradients = programmed_gradients(network.chips, exact.gradients)
            phases = network.get_phases()
            optimizer.step(phases, [g * m for g, m in zip(gradients, masks)])
            network.set_phases(phases)
        curve.append(accuracy(network, data.x_test, data.y_test))
    return curve


@dataclass(frozen=True)
class InSituOutcome:
    """Result of in situ training.

    Attributes:
        test_accuracy_by_epoch: test accuracy on the chip after every epoch.
        cosine_distance_median: median over the steps of the gradient error
            ``1 − ĝ·g`` of the measured against the exact gradient of the same chip, or
            None where it was not computed.
        cosine_distance_by_epoch: median gradient error of every epoch's steps, None
            for an epoch without one.
        steps: training steps taken.
        simulated_time_s: simulated time of the training steps in s.
    """

    test_accuracy_by_epoch: list[float]
    cosine_distance_median: float | None
    cosine_distance_by_epoch: list[float | None]
    steps: int
    simulated_time_s: float


def train_in_situ(
    network: PhotonicNetwork,
    data: EncodedData,
    config: ExperimentConfig,
    shuffle_seed: np.random.SeedSequence,
    epochs: int | None = None,
) -> InSituOutcome:
    """Train the network on its chip with measured gradients, as ``experiments.train``
    does, without writing a results folder.

    Args:
        network: the network on its chips, trained in place from its current phases.
        data: encoded training and test data.
        config: the resolved config. Its ``training`` section sets the optimizer,
            learning rate, batch size, optical loss correction, how often the exact
            gradient is computed for the gradient error and, unless ``epochs`` is
            given, the epochs. Its ``timing`` section sets the schedule.
        shuffle_seed: seed of the mini-batch order.
        epochs: number of epochs, overriding the config.
    """
    trainer = Trainer(config, network, shuffle_seed)
    epochs = config.training.epochs if epochs is None else epochs
    curve = []
    cosines: list[float] = []
    cosines_by_epoch: list[float | None] = []
    for _ in range(epochs):
        records = trainer.train_epoch(data.x_train, data.y_train)
        epoch_cosines = [
            r["cosine_distance"]
            for r in records
            if "cosine_distance" in r and math.isfinite(r["cosine_distance"])
        ]
        cosines += epoch_cosines
        cosines_by_epoch.append(_median(epoch_cosines))
        curve.append(accuracy(network, data.x_test, data.y_test))
    return InSituOutcome(
        test_accuracy_by_epoch=curve,
        cosine_distance_median=_median(cosines),
        cosine_distance_by_epoch=cosines_by_epoch,
        steps=trainer.step_count,
        simulated_time_s=trainer.simulated_time_s,
    )


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def phases_to_json(network: PhotonicNetwork) -> list[list[float]]:
    """Return the programmed phases of every layer as nested lists of floats (rad)."""
    return [phases.tolist() for phases in network.get_phases()]


def spread(values: list[float]) -> dict[str, float]:
    """Return the mean, sample standard deviation (0 for one value), minimum and
    maximum of ``values``."""
    array = np.asarray(values, dtype=float)
    return {
        "mean": float(array.mean()),
        "std": float(array.std(ddof=1)) if array.size > 1 else 0.0,
        "min": float(array.min()),
        "max": float(array.max()),
    }
