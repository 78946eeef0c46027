"""Gradient-descent optimizers that update a list of parameter arrays in place.

The photonic trainer updates the programmed phases of every layer with them, and the digital
baseline its weights and biases.
"""

from __future__ import annotations

import math

import numpy as np


class SGD:
    """Stochastic gradient descent with optional heavy-ball momentum.

    The update is v <- momentum * v + g, then p <- p - learning_rate * v. With
    momentum 0 it reduces to p <- p - learning_rate * g.

    Raises:
        ValueError: if learning_rate is not finite and > 0 or momentum is outside
            [0, 1).
    """

    def __init__(self, learning_rate: float, momentum: float = 0.0) -> None:
        _check_learning_rate(learning_rate)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.learning_rate = learning_rate
        self.momentum = momentum
        self._velocities: list[np.ndarray] | None = None

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update `params` in place from `grads`.

        Raises:
            ValueError: if the lists differ in length or shapes, or differ from the
                parameters of earlier steps.
        """
        _check_parameter_lists(params, grads)
        if self.momentum == 0.0:
            for param, grad in zip(params, grads, strict=True):
                param -= self.learning_rate * grad
            return

        if self._velocities is None:
            self._velocities = [np.zeros_like(param) for param in params]
        _check_state_matches(self._velocities, params)
        for param, grad, velocity in zip(params, grads, self._velocities, strict=True):
            velocity *= self.momentum
            velocity += grad
            param -= self.learning_rate * velocity


class Adam:
    """Adam optimizer with bias-corrected moment estimates (Kingma & Ba, ICLR 2015).

    With t the step count starting at 1:
    m <- beta1 m + (1 - beta1) g, v <- beta2 v + (1 - beta2) g^2,
    p <- p - learning_rate * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + epsilon).

    Raises:
        ValueError: if learning_rate or epsilon is not finite and > 0, or a beta is
            outside [0, 1).
    """

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
    ) -> None:
        _check_learning_rate(learning_rate)
        for label, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= beta < 1:
                raise ValueError(f"{label} must be in [0, 1), got {beta}")
        if not math.isfinite(epsilon) or epsilon <= 0:
            raise ValueError(f"epsilon must be finite and > 0, got {epsilon}")
        self.learning_rate = learning_rate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.step_count = 0
        self._first_moments: list[np.ndarray] | None = None
        self._second_moments: list[np.ndarray] | None = None

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Update `params` in place from `grads`.

        Raises:
            ValueError: if the lists differ in length or shapes, or differ from the
                parameters of earlier steps.
        """
        _check_parameter_lists(params, grads)
        if self._first_moments is None or self._second_moments is None:
            self._first_moments = [np.zeros_like(param) for param in params]
            self._second_moments = [np.zeros_like(param) for param in params]
        _check_state_matches(self._first_moments, params)

        self.step_count += 1
        first_correction = 1.0 - self.beta1**self.step_count
        second_correction = 1.0 - self.beta2**self.step_count
        for param, grad, first, second in zip(
            params, grads, self._first_moments, self._second_moments, strict=True
        ):
            first *= self.beta1
            first += (1.0 - self.beta1) * grad
            second *= self.beta2
            second += (1.0 - self.beta2) * grad**2
            first_unbiased = first / first_correction
            second_unbiased = second / second_correction
            param -= (
                self.learning_rate
                * first_unbiased
                / (np.sqrt(second_unbiased) + self.epsilon)
            )


def _check_learning_rate(learning_rate: float) -> None:
    if not math.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be finite and > 0, got {learning_rate}")


def _check_parameter_lists(params: list[np.ndarray], grads: list[np.ndarray]) -> None:
    if len(params) != len(grads):
        raise ValueError(
            f"got {len(params)} parameter arrays but {len(grads)} gradient arrays"
        )
    for index, (param, grad) in enumerate(zip(params, grads, strict=True)):
        if param.shape != grad.shape:
            raise ValueError(
                f"gradient {index} has shape {grad.shape}, expected {param.shape} "
                "to match its parameter"
            )


def _check_state_matches(state: list[np.ndarray], params: list[np.ndarray]) -> None:
    shapes = [array.shape for array in state]
    if shapes != [param.shape for param in params]:
        raise ValueError(
            "the parameter shapes differ from those of the first step; use a new "
            "optimizer for a different model"
        )


OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")


def make_optimizer(
    name: str, learning_rate: float, momentum: float = 0.0
) -> SGD | Adam:
    """Build the optimizer called ``name`` ("adam" or "sgd"); momentum applies to SGD only.

    Raises:
        ValueError: for an unknown name or an invalid setting.
    """
    if name == "sgd":
        return SGD(learning_rate, momentum=momentum)
    if name == "adam":
        return Adam(learning_rate)
    raise ValueError(
        f"optimizer {name!r} is unknown; choose one of {', '.join(OPTIMIZERS)}"
    )
