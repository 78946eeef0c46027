"""Tests of the digital baseline network, its optimizers and training, and the plots."""

import math
import time

import numpy as np
import pytest

from experiments.baseline import (
    SGD,
    Adam,
    BaselineConfig,
    DigitalMLP,
    softmax_cross_entropy,
    train_digital_baseline,
)
from experiments.datasets import load_dataset, standardize
from experiments.plots import (
    plot_gradient_error,
    plot_training_curves,
    running_median,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RECORD_KEYS = {"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy"}


def scaled_dataset(name, **kwargs):
    dataset = load_dataset(name, **kwargs)
    x_train, x_test = standardize(dataset.x_train, dataset.x_test)
    return x_train, dataset.y_train, x_test, dataset.y_test, dataset.n_classes


def finite_difference_gradients(model, x, y, step=1e-5):
    """Central differences (L(p + h) - L(p - h)) / 2h of every parameter entry."""
    estimates = []
    for param in model.parameters:
        estimate = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            original = param[index]
            param[index] = original + step
            loss_plus = model.loss(x, y)
            param[index] = original - step
            loss_minus = model.loss(x, y)
            param[index] = original
            estimate[index] = (loss_plus - loss_minus) / (2 * step)
        estimates.append(estimate)
    return estimates


# Configuration


def test_config_defaults_are_valid():
    config = BaselineConfig()

    assert config.hidden_sizes == (16,)
    assert config.activation == "relu"
    assert config.optimizer == "adam"


def test_config_stores_list_hidden_sizes_as_tuple():
    config = BaselineConfig(hidden_sizes=[8, 4])

    assert config.hidden_sizes == (8, 4)
    assert hash(config) == hash(BaselineConfig(hidden_sizes=(8, 4)))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hidden_sizes", (8, 0), r"hidden_sizes\[1\] must be an integer >= 1, got 0"),
        ("hidden_sizes", (2.5,), r"hidden_sizes\[0\] must be an integer >= 1, got 2.5"),
        (
            "activation",
            "sigmoid",
            "activation must be one of relu, tanh, got 'sigmoid'",
        ),
        ("optimizer", "rmsprop", "optimizer must be one of adam, sgd, got 'rmsprop'"),
        ("learning_rate", 0.0, "learning_rate must be finite and > 0, got 0.0"),
        ("learning_rate", math.nan, "learning_rate must be finite and > 0, got nan"),
        ("epochs", 0, "epochs must be an integer >= 1, got 0"),
        ("epochs", 2.0, "epochs must be an integer >= 1, got 2.0"),
        ("batch_size", -3, "batch_size must be an integer >= 1, got -3"),
        ("seed", -1, r"seed must be an integer in \[0, 2\*\*63\), got -1"),
        ("seed", True, r"seed must be an integer in \[0, 2\*\*63\), got True"),
        ("momentum", 1.0, r"momentum must be in \[0, 1\), got 1.0"),
    ],
)
def test_config_invalid_field_raises(field, value, message):
    with pytest.raises(ValueError, match=message):
        BaselineConfig(**{field: value})


# Network


def test_n_parameters_counts_weights_and_biases():
    model = DigitalMLP(4, (16, 8), 3, "relu", np.random.default_rng(0))

    assert model.n_parameters == (4 * 16 + 16) + (16 * 8 + 8) + (8 * 3 + 3)


def test_forward_returns_logits_of_batch():
    model = DigitalMLP(3, (5,), 4, "tanh", np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(7, 3))

    assert model.forward(x).shape == (7, 4)


def test_forward_of_linear_model_is_affine_map():
    model = DigitalMLP(2, (), 3, "relu", np.random.default_rng(0))
    x = np.array([[1.0, -2.0], [0.5, 3.0]])

    expected = x @ model.weights[0] + model.biases[0]
    np.testing.assert_array_equal(model.forward(x), expected)


def test_predict_returns_argmax_of_logits():
    model = DigitalMLP(3, (6,), 4, "relu", np.random.default_rng(2))
    x = np.random.default_rng(3).normal(size=(10, 3))

    np.testing.assert_array_equal(model.predict(x), np.argmax(model.forward(x), axis=1))


def test_he_initialisation_std_for_relu():
    model = DigitalMLP(400, (400,), 2, "relu", np.random.default_rng(0))

    assert model.weights[0].std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert model.weights[1].std() == pytest.approx(math.sqrt(2 / 402), rel=0.15)
    np.testing.assert_array_equal(model.biases[0], 0.0)


def test_glorot_initialisation_std_for_tanh():
    model = DigitalMLP(300, (500,), 2, "tanh", np.random.default_rng(0))

    assert model.weights[0].std() == pytest.approx(math.sqrt(2 / 800), rel=0.02)


def test_cross_entropy_equal_logits_is_log_classes():
    logits = np.zeros((3, 5))
    labels = np.array([0, 2, 4])

    loss, grad = softmax_cross_entropy(logits, labels)

    assert loss == pytest.approx(math.log(5), rel=1e-15)
    expected_grad = np.full((3, 5), 0.2)
    expected_grad[[0, 1, 2], labels] -= 1.0
    np.testing.assert_allclose(grad, expected_grad / 3, rtol=1e-14)


def test_cross_entropy_stable_for_large_logits():
    logits = np.array([[1000.0, 0.0], [1000.0, 0.0]])

    loss, grad = softmax_cross_entropy(logits, np.array([0, 1]))

    # The per-sample losses are about e^-1000 and 1000, so the mean is 500.
    assert loss == pytest.approx(500.0, rel=1e-15)
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_gradients_match_central_finite_differences(activation):
    rng = np.random.default_rng(11)
    model = DigitalMLP(3, (4, 5), 3, activation, rng)
    for bias in model.biases:
        bias[:] = rng.normal(scale=0.1, size=bias.shape)
    x = rng.normal(size=(6, 3))
    y = np.array([0, 1, 2, 2, 1, 0])

    _, grads = model.loss_and_gradients(x, y)
    estimates = finite_difference_gradients(model, x, y)

    for index, (grad, estimate) in enumerate(zip(grads, estimates, strict=True)):
        error = np.linalg.norm(grad - estimate) / np.linalg.norm(estimate)
        assert error < 1e-6, (index, error)


def test_loss_and_gradients_returns_loss_of_forward():
    model = DigitalMLP(2, (3,), 2, "tanh", np.random.default_rng(0))
    x = np.array([[0.3, -0.4], [1.0, 2.0]])
    y = np.array([1, 0])

    loss, _ = model.loss_and_gradients(x, y)
    expected, _ = softmax_cross_entropy(model.forward(x), y)

    assert loss == expected


def test_loss_and_gradients_rejects_nan_features():
    model = DigitalMLP(2, (3,), 2, "relu", np.random.default_rng(0))

    with pytest.raises(ValueError, match="x contains 1 NaN"):
        model.loss_and_gradients(np.array([[0.0, np.nan]]), np.array([0]))


def test_loss_and_gradients_rejects_out_of_range_label():
    model = DigitalMLP(2, (3,), 2, "relu", np.random.default_rng(0))

    with pytest.raises(ValueError, match=r"labels must be in 0\.\.1, got range"):
        model.loss_and_gradients(np.zeros((2, 2)), np.array([0, 2]))


# Optimizers


def test_sgd_without_momentum_steps_against_gradient():
    param = np.array([1.0, -2.0])
    optimizer = SGD(learning_rate=0.5)

    optimizer.step([param], [np.array([0.2, -0.4])])

    np.testing.assert_allclose(param, [0.9, -1.8], rtol=1e-15)


def test_sgd_momentum_accumulates_velocity():
    param = np.array([0.0])
    gradient = np.array([1.0])
    optimizer = SGD(learning_rate=0.1, momentum=0.9)

    optimizer.step([param], [gradient])
    optimizer.step([param], [gradient])

    # Velocities 1 and 0.9 + 1 = 1.9, so the parameter moves by -0.1 * 2.9.
    assert param[0] == pytest.approx(-0.29, rel=1e-14)


def test_adam_first_step_moves_by_learning_rate():
    param = np.array([1.0, 1.0, 1.0])
    gradient = np.array([3.0, -1e-3, 0.0])
    optimizer = Adam(learning_rate=0.01)

    optimizer.step([param], [gradient])

    # After bias correction m = g and v = g^2, so the step is lr * g / (|g| + eps).
    expected = 1.0 - 0.01 * gradient / (np.abs(gradient) + 1e-8)
    np.testing.assert_allclose(param, expected, rtol=1e-14)


def test_adam_second_step_uses_bias_corrected_moments():
    param = np.array([0.0])
    optimizer = Adam(learning_rate=0.1, beta1=0.9, beta2=0.999, epsilon=1e-8)

    optimizer.step([param], [np.array([1.0])])
    optimizer.step([param], [np.array([3.0])])

    m = 0.9 * 0.1 + 0.1 * 3.0
    v = 0.999 * 0.001 + 0.001 * 9.0
    m_hat = m / (1 - 0.9**2)
    v_hat = v / (1 - 0.999**2)
    first_step = 0.1 * 1.0 / (1.0 + 1e-8)
    expected = -first_step - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8)
    assert param[0] == pytest.approx(expected, rel=1e-13)


def test_optimizer_rejects_mismatched_gradient_shape():
    optimizer = Adam()

    with pytest.raises(
        ValueError, match=r"gradient 0 has shape \(3,\), expected \(2,\)"
    ):
        optimizer.step([np.zeros(2)], [np.zeros(3)])


def test_optimizer_rejects_invalid_learning_rate():
    with pytest.raises(
        ValueError, match="learning_rate must be finite and > 0, got -1"
    ):
        SGD(learning_rate=-1)


# Training


def test_training_returns_one_record_per_epoch_plus_initial():
    data = scaled_dataset("moons", n_samples=100, seed=0)
    config = BaselineConfig(hidden_sizes=(8,), epochs=5, batch_size=16)

    records = train_digital_baseline(*data, config)

    assert [record["epoch"] for record in records] == [0, 1, 2, 3, 4, 5]
    for record in records:
        assert set(record) == RECORD_KEYS
        assert 0.0 <= record["train_accuracy"] <= 1.0
        assert 0.0 <= record["test_accuracy"] <= 1.0


def test_training_calls_on_epoch_with_each_record():
    data = scaled_dataset("moons", n_samples=100, seed=0)
    config = BaselineConfig(hidden_sizes=(8,), epochs=3)
    seen = []

    records = train_digital_baseline(*data, config, on_epoch=seen.append)

    assert seen == records


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_training_decreases_loss(optimizer):
    data = scaled_dataset("moons", n_samples=200, seed=1)
    config = BaselineConfig(
        hidden_sizes=(16,),
        optimizer=optimizer,
        learning_rate=0.05 if optimizer == "sgd" else 0.01,
        momentum=0.9 if optimizer == "sgd" else 0.0,
        epochs=20,
        batch_size=16,
        seed=3,
    )

    records = train_digital_baseline(*data, config)

    assert records[-1]["train_loss"] < 0.5 * records[0]["train_loss"]
    assert records[-1]["test_loss"] < records[0]["test_loss"]


def test_training_reaches_high_iris_test_accuracy_quickly():
    data = scaled_dataset("iris", seed=0)
    config = BaselineConfig(
        hidden_sizes=(16,), learning_rate=0.01, epochs=100, batch_size=16, seed=0
    )

    start = time.perf_counter()
    records = train_digital_baseline(*data, config)
    elapsed = time.perf_counter() - start

    assert records[-1]["test_accuracy"] >= 0.9
    assert elapsed < 5.0


def test_training_with_same_seed_gives_identical_records():
    data = scaled_dataset("circles", n_samples=120, seed=0)
    config = BaselineConfig(hidden_sizes=(8, 8), activation="tanh", epochs=4, seed=9)

    first = train_digital_baseline(*data, config)
    second = train_digital_baseline(*data, config)

    assert first == second


def test_training_with_different_seeds_gives_different_records():
    data = scaled_dataset("circles", n_samples=120, seed=0)

    first = train_digital_baseline(*data, BaselineConfig(epochs=2, seed=1))
    second = train_digital_baseline(*data, BaselineConfig(epochs=2, seed=2))

    assert first[0]["train_loss"] != second[0]["train_loss"]


def test_training_rejects_nan_features():
    x_train, y_train, x_test, y_test, n_classes = scaled_dataset("iris", seed=0)
    x_train[5, 2] = np.nan

    with pytest.raises(ValueError, match="train_x contains 1 NaN values"):
        train_digital_baseline(
            x_train, y_train, x_test, y_test, n_classes, BaselineConfig(epochs=1)
        )


def test_training_rejects_float_labels():
    x_train, y_train, x_test, y_test, n_classes = scaled_dataset("iris", seed=0)

    with pytest.raises(ValueError, match="test_y must contain integer class labels"):
        train_digital_baseline(
            x_train,
            y_train,
            x_test,
            y_test.astype(float),
            n_classes,
            BaselineConfig(epochs=1),
        )


def test_training_rejects_feature_count_mismatch():
    x_train, y_train, x_test, y_test, n_classes = scaled_dataset("iris", seed=0)

    with pytest.raises(ValueError, match="test_x has 3 features but train_x has 4"):
        train_digital_baseline(
            x_train, y_train, x_test[:, :3], y_test, n_classes, BaselineConfig()
        )


# Plots


def make_records(epochs, start_loss):
    return [
        {
            "epoch": epoch,
            "train_loss": start_loss / (epoch + 1),
            "train_accuracy": 1 - 0.5 / (epoch + 1),
            "test_loss": 1.1 * start_loss / (epoch + 1),
            "test_accuracy": 1 - 0.6 / (epoch + 1),
        }
        for epoch in range(epochs + 1)
    ]


def assert_png_written(path):
    assert path.is_file()
    content = path.read_bytes()
    assert len(content) > 1000
    assert content.startswith(PNG_SIGNATURE)


def test_plot_training_curves_writes_png(tmp_path):
    target = tmp_path / "figures" / "curves.png"

    written = plot_training_curves(make_records(10, 1.2), make_records(10, 0.9), target)

    assert written == target
    assert_png_written(target)


def test_plot_training_curves_accepts_baseline_records(tmp_path):
    data = scaled_dataset("iris", seed=0)
    digital = train_digital_baseline(*data, BaselineConfig(epochs=3))

    written = plot_training_curves([], digital, tmp_path / "digital.png")

    assert_png_written(written)


def test_plot_training_curves_rejects_missing_key(tmp_path):
    records = make_records(2, 1.0)
    del records[1]["test_accuracy"]

    with pytest.raises(
        ValueError, match="photonic record 1 has no key 'test_accuracy'"
    ):
        plot_training_curves(records, [], tmp_path / "bad.png")


def test_plot_training_curves_rejects_two_empty_lists(tmp_path):
    with pytest.raises(ValueError, match="both empty"):
        plot_training_curves([], [], tmp_path / "empty.png")


def test_plot_gradient_error_writes_png_with_zeros(tmp_path):
    rng = np.random.default_rng(0)
    steps = np.arange(50)
    cosine_distance = 10.0 ** rng.uniform(-6, -2, size=50)
    cosine_distance[[0, 10]] = 0.0
    cosine_distance[20] = -1e-17
    relative_error = np.sqrt(2 * np.abs(cosine_distance))

    written = plot_gradient_error(
        steps, cosine_distance, relative_error, tmp_path / "grad.png"
    )

    assert written == tmp_path / "grad.png"
    assert_png_written(written)


def test_plot_gradient_error_rejects_length_mismatch(tmp_path):
    with pytest.raises(ValueError, match="equal lengths, got 3, 2 and 3"):
        plot_gradient_error([0, 1, 2], [0.1, 0.2], [0.1, 0.2, 0.3], tmp_path / "x.png")


def test_plot_gradient_error_rejects_nan(tmp_path):
    with pytest.raises(ValueError, match="relative_error contains 1 NaN"):
        plot_gradient_error([0, 1], [0.1, 0.2], [0.1, np.nan], tmp_path / "x.png")


def test_running_median_uses_centred_window_cut_at_ends():
    values = np.array([5.0, 1.0, 9.0, 3.0, 7.0])

    medians = running_median(values, 3)

    # Windows: [5, 1], [5, 1, 9], [1, 9, 3], [9, 3, 7], [3, 7].
    np.testing.assert_array_equal(medians, [3.0, 5.0, 3.0, 7.0, 5.0])


def test_running_median_window_one_is_identity():
    values = np.array([2.0, -1.0, 4.0])

    np.testing.assert_array_equal(running_median(values, 1), values)
