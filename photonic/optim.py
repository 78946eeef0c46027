"""Gradient-descent optimizers on a list of parameter arrays (phases of every layer)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


class SGD:
    """Stochastic gradient descent with optional momentum: v ← μv + g, p ← p − η·v."""

    def __init__(self, learning_rate: float, momentum: float = 0.0) -> None:
        if not (np.isfinite(learning_rate) and learning_rate > 0):
            raise ValueError(
                f"learning rate {learning_rate!r} is invalid; it must be > 0"
            )
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum {momentum!r} is invalid; it must lie in [0, 1)")
        self.learning_rate = learning_rate
        self.momentum = momentum
        self._velocity: list[np.ndarray] | None = None

    def step(
        self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """Return the updated parameters; the inputs are not modified."""
        if self._velocity is None:
            self._velocity = [np.zeros_like(g, dtype=float) for g in grads]
        updated = []
        for index, (p, g) in enumerate(zip(params, grads)):
            self._velocity[index] = self.momentum * self._velocity[index] + g
            updated.append(p - self.learning_rate * self._velocity[index])
        return updated


class Adam:
    """Adam (Kingma and Ba, ICLR 2015) with bias-corrected first and second moments."""

    def __init__(
        self,
        learning_rate: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None:
        if not (np.isfinite(learning_rate) and learning_rate > 0):
            raise ValueError(
                f"learning rate {learning_rate!r} is invalid; it must be > 0"
            )
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= beta < 1:
                raise ValueError(
                    f"Adam {name} {beta!r} is invalid; it must lie in [0, 1)"
                )
        self.learning_rate = learning_rate
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self._first: list[np.ndarray] | None = None
        self._second: list[np.ndarray] | None = None
        self._count = 0

    def step(
        self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """Return the updated parameters; the inputs are not modified."""
        if self._first is None:
            self._first = [np.zeros_like(g, dtype=float) for g in grads]
            self._second = [np.zeros_like(g, dtype=float) for g in grads]
        self._count += 1
        correction1 = 1 - self.beta1**self._count
        correction2 = 1 - self.beta2**self._count
        updated = []
        for index, (p, g) in enumerate(zip(params, grads)):
            self._first[index] = self.beta1 * self._first[index] + (1 - self.beta1) * g
            self._second[index] = (
                self.beta2 * self._second[index] + (1 - self.beta2) * g * g
            )
            first = self._first[index] / correction1
            second = self._second[index] / correction2
            updated.append(
                p - self.learning_rate * first / (np.sqrt(second) + self.epsilon)
            )
        return updated


OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def make_optimizer(name: str, learning_rate: float, **options: float) -> SGD | Adam:
    """Build the optimizer called ``name`` ("sgd" or "adam").

    Raises:
        ValueError: for an unknown name or invalid settings.
    """
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(
            f"optimizer {name!r} is unknown; choose one of {', '.join(OPTIMIZERS)}"
        ) from None
    return cls(learning_rate, **options)
