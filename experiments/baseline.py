"""Digital baseline: a real-valued multilayer perceptron trained by backpropagation.

The photonic network is compared against this model on the same data. Layers compute
`h = x @ W + b` with W of shape (fan_in, fan_out). The last layer returns logits, and
the loss is softmax cross-entropy averaged over the batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from photonic.optim import OPTIMIZERS, SGD, Adam, make_optimizer

logger = logging.getLogger(__name__)

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh")

EpochRecord = dict[str, float | int]


@dataclass(frozen=True)
class BaselineConfig:
    """Training configuration of the digital baseline.

    Attributes:
        hidden_sizes: width of each hidden layer, input side first. An empty tuple
            gives multinomial logistic regression.
        activation: hidden-layer nonlinearity, "relu" or "tanh".
        optimizer: "adam" or "sgd".
        learning_rate: optimizer step size, > 0.
        epochs: number of passes over the training set, >= 1.
        batch_size: samples per mini-batch, >= 1. The last batch of an epoch is
            smaller when the training set size is not a multiple of it.
        seed: seed of the numpy Generator that draws the initial weights and shuffles
            the mini-batches, in [0, 2**63).
        momentum: heavy-ball momentum of SGD, in [0, 1). Adam ignores it.
    """

    hidden_sizes: tuple[int, ...] = (16,)
    activation: str = "relu"
    optimizer: str = "adam"
    learning_rate: float = 1e-2
    epochs: int = 50
    batch_size: int = 32
    seed: int = 0
    momentum: float = 0.0

    def __post_init__(self) -> None:
        # Lists are accepted and stored as a tuple so the config stays hashable.
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        for index, width in enumerate(self.hidden_sizes):
            if not _is_integer(width) or width < 1:
                raise ValueError(
                    f"hidden_sizes[{index}] must be an integer >= 1, got {width!r}"
                )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, "
                f"got {self.activation!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                f"got {self.optimizer!r}"
            )
        if not math.isfinite(self.learning_rate) or self.learning_rate <= 0:
            raise ValueError(
                f"learning_rate must be finite and > 0, got {self.learning_rate}"
            )
        if not _is_integer(self.epochs) or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if not _is_integer(self.batch_size) or self.batch_size < 1:
            raise ValueError(
                f"batch_size must be an integer >= 1, got {self.batch_size!r}"
            )
        if not _is_integer(self.seed) or not 0 <= self.seed < 2**63:
            raise ValueError(
                f"seed must be an integer in [0, 2**63), got {self.seed!r}"
            )
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")


def _is_integer(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


class DigitalMLP:
    """Fully connected network with a softmax cross-entropy loss, in float64.

    Hidden layers use He-normal weights (std sqrt(2 / fan_in), He et al. 2015) for
    ReLU and Glorot-normal weights (std sqrt(2 / (fan_in + fan_out)), Glorot & Bengio
    2010) for tanh. The output layer is linear and uses Glorot-normal weights. Biases
    start at zero.

    Args:
        n_inputs: number of input features.
        hidden_sizes: width of each hidden layer, input side first.
        n_outputs: number of classes (logits).
        activation: "relu" or "tanh".
        rng: Generator that draws the initial weights.

    Raises:
        ValueError: if a size is below 1 or the activation is unknown.
    """

    def __init__(
        self,
        n_inputs: int,
        hidden_sizes: Sequence[int],
        n_outputs: int,
        activation: str,
        rng: np.random.Generator,
    ) -> None:
        if n_inputs < 1:
            raise ValueError(f"n_inputs must be >= 1, got {n_inputs}")
        if n_outputs < 1:
            raise ValueError(f"n_outputs must be >= 1, got {n_outputs}")
        if any(width < 1 for width in hidden_sizes):
            raise ValueError(
                f"hidden_sizes must all be >= 1, got {tuple(hidden_sizes)}"
            )
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, "
                f"got {activation!r}"
            )
        self.activation = activation
        self.layer_sizes: tuple[int, ...] = (n_inputs, *hidden_sizes, n_outputs)
        self.weights: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []

        n_layers = len(self.layer_sizes) - 1
        for index in range(n_layers):
            fan_in = self.layer_sizes[index]
            fan_out = self.layer_sizes[index + 1]
            is_hidden = index < n_layers - 1
            if is_hidden and activation == "relu":
                std = math.sqrt(2.0 / fan_in)
            else:
                std = math.sqrt(2.0 / (fan_in + fan_out))
            self.weights.append(rng.normal(0.0, std, size=(fan_in, fan_out)))
            self.biases.append(np.zeros(fan_out))

    @property
    def parameters(self) -> list[np.ndarray]:
        """Parameter arrays in the order W0, b0, W1, b1, ...

        The arrays are the model's own, so an optimizer updating them in place
        updates the model.
        """
        params: list[np.ndarray] = []
        for weight, bias in zip(self.weights, self.biases, strict=True):
            params.extend((weight, bias))
        return params

    @property
    def n_parameters(self) -> int:
        """Total number of trainable scalars (weights and biases)."""
        return sum(param.size for param in self.parameters)

    @property
    def n_inputs(self) -> int:
        """Number of input features."""
        return self.layer_sizes[0]

    @property
    def n_outputs(self) -> int:
        """Number of logits (classes)."""
        return self.layer_sizes[-1]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the logits of a batch.

        Args:
            x: features of shape (batch, n_inputs).

        Returns:
            Logits of shape (batch, n_outputs).

        Raises:
            ValueError: if x has the wrong shape or contains NaN or infinity.
        """
        x = self._check_features(x)
        logits, _ = self._forward_with_cache(x)
        return logits

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Return the predicted class (argmax of the logits) of each sample, as int64.

        Raises:
            ValueError: as `forward`.
        """
        return np.argmax(self.forward(x), axis=1).astype(np.int64)

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Return the softmax cross-entropy averaged over the batch, in nats.

        Raises:
            ValueError: as `loss_and_gradients`.
        """
        x = self._check_features(x)
        y = self._check_labels(y, x.shape[0])
        logits, _ = self._forward_with_cache(x)
        loss, _ = softmax_cross_entropy(logits, y)
        return loss

    def loss_and_gradients(
        self, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, list[np.ndarray]]:
        """Compute the mean softmax cross-entropy and its gradient by backpropagation.

        Args:
            x: features of shape (batch, n_inputs), batch >= 1.
            y: integer labels of shape (batch,) in 0..n_outputs-1.

        Returns:
            The loss in nats and the gradient of each array in `parameters`, in the
            same order and with the same shapes.

        Raises:
            ValueError: if x or y has the wrong shape, x contains NaN or infinity, or
                a label is out of range.
        """
        x = self._check_features(x)
        y = self._check_labels(y, x.shape[0])
        logits, activations = self._forward_with_cache(x)
        loss, grad_pre_activation = softmax_cross_entropy(logits, y)

        n_layers = len(self.weights)
        grads: list[np.ndarray] = [np.empty(0)] * (2 * n_layers)
        for index in reversed(range(n_layers)):
            layer_input = activations[index]
            grads[2 * index] = layer_input.T @ grad_pre_activation
            grads[2 * index + 1] = grad_pre_activation.sum(axis=0)
            if index == 0:
                break
            grad_hidden = grad_pre_activation @ self.weights[index].T
            grad_pre_activation = grad_hidden * self._activation_derivative(layer_input)
        return loss, grads

    def _forward_with_cache(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Return the logits and the input of every layer (x, then hidden outputs)."""
        activations = [x]
        hidden = x
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            hidden = self._activate(hidden @ weight + bias)
            activations.append(hidden)
        logits = hidden @ self.weights[-1] + self.biases[-1]
        return logits, activations

    def _activate(self, pre_activation: np.ndarray) -> np.ndarray:
        if self.activation == "relu":
            return np.maximum(pre_activation, 0.0)
        return np.tanh(pre_activation)

    def _activation_derivative(self, output: np.ndarray) -> np.ndarray:
        """Derivative of the activation, written in terms of its output.

        For ReLU the derivative at 0 is taken as 0.
        """
        if self.activation == "relu":
            return (output > 0.0).astype(np.float64)
        return 1.0 - output**2

    def _check_features(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(
                f"x must have shape (batch, {self.n_inputs}), got {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            n_bad = int(np.count_nonzero(~np.isfinite(x)))
            raise ValueError(f"x contains {n_bad} NaN or infinite values")
        return x

    def _check_labels(self, y: np.ndarray, batch: int) -> np.ndarray:
        return _check_labels(y, batch, self.n_outputs, "y")


def _check_labels(y: np.ndarray, batch: int, n_classes: int, label: str) -> np.ndarray:
    """Return y as int64 after checking its shape, dtype and range."""
    y = np.asarray(y)
    if y.shape != (batch,):
        raise ValueError(
            f"{label} must have shape ({batch},) to match the features, got {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"{label} must contain integer class labels, got dtype {y.dtype}; "
            "convert with astype(int)"
        )
    if batch and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"{label} labels must be in 0..{n_classes - 1}, got range "
            f"[{y.min()}, {y.max()}]"
        )
    return y.astype(np.int64)


def softmax_cross_entropy(
    logits: np.ndarray, labels: np.ndarray
) -> tuple[float, np.ndarray]:
    """Compute the batch-mean softmax cross-entropy and its gradient in the logits.

    The log-softmax is computed as z - max(z) - log(sum(exp(z - max(z)))), which does
    not overflow for large logits.

    Args:
        logits: array of shape (batch, classes), batch >= 1.
        labels: integer labels of shape (batch,).

    Returns:
        The loss in nats and its gradient (softmax(z) - onehot(y)) / batch, of the
        same shape as logits.

    Raises:
        ValueError: if the batch is empty.
    """
    batch = logits.shape[0]
    if batch == 0:
        raise ValueError("cannot compute the loss of an empty batch")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_normaliser = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_probabilities = shifted - log_normaliser
    rows = np.arange(batch)
    loss = -float(log_probabilities[rows, labels].mean())

    grad = np.exp(log_probabilities)
    grad[rows, labels] -= 1.0
    grad /= batch
    return loss, grad


def make_baseline_optimizer(config: BaselineConfig) -> SGD | Adam:
    """Return the optimizer named by `config.optimizer` with its learning rate."""
    return make_optimizer(config.optimizer, config.learning_rate, config.momentum)


def evaluate(model: DigitalMLP, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Return the mean cross-entropy (nats) and the accuracy (fraction) of `model`.

    Raises:
        ValueError: as `DigitalMLP.loss_and_gradients`, and for an empty set.
    """
    logits = model.forward(x)
    y = _check_labels(y, logits.shape[0], model.n_outputs, "y")
    loss, _ = softmax_cross_entropy(logits, y)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y))
    return loss, accuracy


def train_digital_baseline(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    n_classes: int,
    config: BaselineConfig,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> list[EpochRecord]:
    """Train a `DigitalMLP` with mini-batch backpropagation and record each epoch.

    One Generator seeded with `config.seed` draws the initial weights and then the
    shuffle of every epoch, so the same inputs and config give identical records.
    Losses and accuracies in a record are evaluated on the whole training and test
    sets with the weights at the end of that epoch, not averaged over its batches.

    Args:
        train_x: training features of shape (n_train, n_features), already scaled.
        train_y: integer training labels of shape (n_train,) in 0..n_classes-1.
        test_x: test features of shape (n_test, n_features), scaled like train_x.
        test_y: integer test labels of shape (n_test,).
        n_classes: number of classes, >= 2.
        config: network and training settings.
        on_epoch: called with each record as soon as it exists, epoch 0 included.

    Returns:
        config.epochs + 1 records with keys "epoch" (0 before training, then 1-based),
        "train_loss", "train_accuracy", "test_loss" and "test_accuracy". Losses are
        mean cross-entropies in nats and accuracies fractions in [0, 1].

    Raises:
        ValueError: if a set is empty, shapes disagree, features contain NaN or
            infinity, or labels are not integers in 0..n_classes-1.
        FloatingPointError: if training diverges so that a loss becomes NaN or
            infinite.
    """
    train_x, train_y = _check_training_set(train_x, train_y, n_classes, "train")
    test_x, test_y = _check_training_set(test_x, test_y, n_classes, "test")
    if test_x.shape[1] != train_x.shape[1]:
        raise ValueError(
            f"test_x has {test_x.shape[1]} features but train_x has {train_x.shape[1]}"
        )

    rng = np.random.default_rng(config.seed)
    model = DigitalMLP(
        train_x.shape[1], config.hidden_sizes, n_classes, config.activation, rng
    )
    optimizer = make_baseline_optimizer(config)
    logger.info(
        "training digital baseline: %d parameters, %d training samples, config %s",
        model.n_parameters,
        train_x.shape[0],
        config,
    )

    records: list[EpochRecord] = []
    n_train = train_x.shape[0]
    for epoch in range(config.epochs + 1):
        if epoch > 0:
            order = rng.permutation(n_train)
            for start in range(0, n_train, config.batch_size):
                batch = order[start : start + config.batch_size]
                _, grads = model.loss_and_gradients(train_x[batch], train_y[batch])
                optimizer.step(model.parameters, grads)

        record = _make_record(epoch, model, train_x, train_y, test_x, test_y)
        logger.debug("digital baseline epoch %s", record)
        records.append(record)
        if on_epoch is not None:
            on_epoch(record)

    final = records[-1]
    logger.info(
        "digital baseline finished: test loss %.4f, test accuracy %.4f",
        final["test_loss"],
        final["test_accuracy"],
    )
    return records


def _make_record(
    epoch: int,
    model: DigitalMLP,
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
) -> EpochRecord:
    train_loss, train_accuracy = evaluate(model, train_x, train_y)
    test_loss, test_accuracy = evaluate(model, test_x, test_y)
    if not (math.isfinite(train_loss) and math.isfinite(test_loss)):
        # Raised instead of recorded so a diverged run never looks like a result.
        raise FloatingPointError(
            f"training diverged at epoch {epoch}: train loss {train_loss}, test loss "
            f"{test_loss}; lower the learning rate"
        )
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_accuracy": train_accuracy,
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
    }


def _check_training_set(
    x: np.ndarray, y: np.ndarray, n_classes: int, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """Return x as float64 and y as int64 after checking shapes, values and labels."""
    if not _is_integer(n_classes) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"{split}_x must be a non-empty 2-D array (n_samples, n_features), "
            f"got shape {x.shape}"
        )
    if np.isnan(x).any():
        n_nan = int(np.count_nonzero(np.isnan(x)))
        raise ValueError(f"{split}_x contains {n_nan} NaN values")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{split}_x contains infinite values")
    y = _check_labels(y, x.shape[0], n_classes, f"{split}_y")
    return x, y
