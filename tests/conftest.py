"""Shared builders for the physics tests: random fields and the two reference problems.

The two problems are (a) a classifier of three 4-port mesh layers with |z| activations and a
grouped power cross-entropy, and (b) a single 6-port linear mesh fitted to complex targets by
the complex mean squared error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from experiments.blas import limit_blas_threads
from photonic.hardware import Chip, HardwareConfig
from photonic.losses import ComplexMSE, PowerCrossEntropy
from photonic.mesh import MeshLayout
from photonic.network import AbsActivation, IdentityActivation, PhotonicNetwork

# One BLAS thread for the whole test session: the tests' products are small, and threads
# slow them down (experiments/blas.py gives the figures).
_BLAS_LIMIT = limit_blas_threads()


def random_fields(rng: np.random.Generator, batch: int, n_modes: int) -> np.ndarray:
    """Complex Gaussian fields ``(batch, n_modes)`` with every row scaled to unit power."""
    fields = rng.standard_normal((batch, n_modes)) + 1j * rng.standard_normal(
        (batch, n_modes)
    )
    return fields / np.linalg.norm(fields, axis=1, keepdims=True)


@dataclass
class Problem:
    """A network on chips with one batch of inputs and its targets (labels or fields)."""

    network: PhotonicNetwork
    x: np.ndarray
    targets: np.ndarray


ProblemBuilder = Callable[..., Problem]


@pytest.fixture
def make_fields() -> Callable[[np.random.Generator, int, int], np.ndarray]:
    """The ``random_fields`` helper, for test modules that need random inputs."""
    return random_fields


@pytest.fixture
def classifier_problem() -> ProblemBuilder:
    """Builder of problem (a): 3 layers of 4-port meshes, AbsActivation, grouped classes."""

    def build(
        topology: str, hardware: HardwareConfig | None = None, seed: int = 7
    ) -> Problem:
        hardware = HardwareConfig() if hardware is None else hardware
        layout = MeshLayout.create(4, topology)
        chips = [Chip(layout, hardware, seed=seed * 100 + layer) for layer in range(3)]
        loss = PowerCrossEntropy(n_modes=4, groups=((0, 1), (2, 3)))
        network = PhotonicNetwork(chips, AbsActivation(), loss)
        rng = np.random.default_rng(seed)
        x = random_fields(rng, 8, 4)
        labels = rng.integers(0, 2, size=8)
        return Problem(network, x, labels)

    return build


@pytest.fixture
def regression_problem() -> ProblemBuilder:
    """Builder of problem (b): one 6-port mesh, identity activation, ComplexMSE."""

    def build(
        topology: str, hardware: HardwareConfig | None = None, seed: int = 11
    ) -> Problem:
        hardware = HardwareConfig() if hardware is None else hardware
        layout = MeshLayout.create(6, topology)
        chip = Chip(layout, hardware, seed=seed)
        network = PhotonicNetwork([chip], IdentityActivation(), ComplexMSE())
        rng = np.random.default_rng(seed)
        x = random_fields(rng, 5, 6)
        targets = random_fields(rng, 5, 6)
        return Problem(network, x, targets)

    return build
