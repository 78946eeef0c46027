"""Network pieces around the meshes: activations, input encoding and optimizers."""

from __future__ import annotations

import numpy as np
import pytest

from photonic.encoding import AmplitudeEncoder
from photonic.hardware import Chip, HardwareConfig
from photonic.losses import ComplexMSE
from photonic.mesh import MeshLayout
from photonic.network import (
    AbsActivation,
    IdentityActivation,
    PhotonicNetwork,
    activation_by_name,
    propagate,
)
from photonic.optim import SGD, Adam, make_optimizer


def test_abs_adjoint_at_zero_is_zero() -> None:
    z = np.array([0.0 + 0.0j, 3.0 + 4.0j, 0.0 + 0.0j])
    gamma = np.array([1.0 + 2.0j, 2.0 - 1.0j, -3.0 + 0.0j])
    with np.errstate(all="raise"):
        adjoint = AbsActivation().adjoint(z, gamma)
    assert np.all(np.isfinite(adjoint))
    assert adjoint[0] == 0
    assert adjoint[2] == 0
    # e^{−i·arg z}·Re(Γ) with z = 3 + 4i and Re(Γ) = 2.
    assert adjoint[1] == pytest.approx((3 - 4j) / 5 * 2.0, rel=1e-15)


def test_abs_adjoint_matches_differences() -> None:
    # For L = Σ Re(c·|z|) the adjoint source arriving at |z| is Γ = c, and the source to
    # pass on is ∂L/∂Re(z) − i·∂L/∂Im(z).
    rng = np.random.default_rng(30)
    z = rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3))
    c = rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3))
    activation = AbsActivation()

    def loss(value: np.ndarray) -> float:
        return float(np.sum(np.real(c * activation.forward(value))))

    step = 1e-6
    expected = np.zeros_like(z)
    for index in np.ndindex(z.shape):
        for direction, weight in ((1.0, 1.0), (1j, -1j)):
            plus, minus = z.copy(), z.copy()
            plus[index] += direction * step
            minus[index] -= direction * step
            expected[index] += weight * (loss(plus) - loss(minus)) / (2 * step)
    np.testing.assert_allclose(activation.adjoint(z, c), expected, rtol=0, atol=1e-8)


def test_identity_adjoint_passes_source_through() -> None:
    gamma = np.array([[1.0 - 2.0j, 0.5j]])
    np.testing.assert_array_equal(
        IdentityActivation().adjoint(np.ones((1, 2)), gamma), gamma
    )


def test_unknown_activation_raises_naming_value() -> None:
    with pytest.raises(ValueError, match="'relu'"):
        activation_by_name("relu")


def test_network_rejects_mixed_widths() -> None:
    chips = [
        Chip(MeshLayout.create(4, "rectangular"), HardwareConfig(), seed=1),
        Chip(MeshLayout.create(5, "rectangular"), HardwareConfig(), seed=2),
    ]
    with pytest.raises(
        ValueError, match="layer 0 has 4 outputs but layer 1 has 5 inputs"
    ):
        PhotonicNetwork(chips, AbsActivation(), ComplexMSE())


def test_inference_applies_activation_between_layers() -> None:
    layout = MeshLayout.create(3, "triangular")
    chips = [Chip(layout, HardwareConfig(), seed=s) for s in (1, 2)]
    network = PhotonicNetwork(chips, AbsActivation(), ComplexMSE())
    x = np.array([[0.6, 0.0, 0.8j]])
    first, second = (chip.device().matrix() for chip in chips)
    expected = np.abs(x @ first.T) @ second.T
    np.testing.assert_allclose(network.infer(x, noisy=False), expected, atol=1e-14)
    trace = propagate(network.devices(), network.activation, x)
    np.testing.assert_allclose(trace.inputs[1], np.abs(x @ first.T), atol=1e-14)


def training_features(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(3.0, 2.0, size=(50, 3))


@pytest.mark.parametrize("power", [1.0, 2.5])
def test_encoded_samples_have_fixed_power(power: float) -> None:
    encoder = AmplitudeEncoder(n_modes=5, power=power).fit(training_features(0))
    # Samples far outside the training range exercise the shrinking branch.
    unseen = np.vstack([training_features(1), 40.0 * training_features(2)[:5]])
    for features in (training_features(0), unseen):
        fields = encoder.transform(features)
        total = np.sum(np.abs(fields) ** 2, axis=1)
        np.testing.assert_allclose(total, power, rtol=0, atol=1e-12)


def test_bias_ports_share_remaining_power() -> None:
    encoder = AmplitudeEncoder(n_modes=6, power=1.0).fit(training_features(0))
    fields = encoder.transform(training_features(3))
    bias = fields[:, 3:]
    np.testing.assert_allclose(bias, bias[:, :1] * np.ones(3), rtol=0, atol=0)
    assert np.all(bias.real > 0)


@pytest.mark.parametrize("n_features", [4, 5])
def test_encoder_needs_a_bias_port(n_features: int) -> None:
    features = np.random.default_rng(0).standard_normal((10, n_features))
    with pytest.raises(ValueError, match=f"{n_features} features"):
        AmplitudeEncoder(n_modes=4).fit(features)


@pytest.mark.parametrize("stage", ["fit", "transform"])
def test_encoder_rejects_nan_features(stage: str) -> None:
    encoder = AmplitudeEncoder(n_modes=4)
    features = training_features(0)
    if stage == "transform":
        encoder.fit(features)
    features = features.copy()
    features[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity in rows \[7\]"):
        getattr(encoder, stage)(features)


def test_sgd_step_is_p_minus_lr_g() -> None:
    params = [np.array([0.3, -1.2, 2.0]), np.array([5.0])]
    grads = [np.array([0.5, -0.25, 0.0]), np.array([-3.0])]
    expected = [p - 0.1 * g for p, g in zip(params, grads)]
    SGD(learning_rate=0.1).step(params, grads)
    for new, value in zip(params, expected):
        np.testing.assert_allclose(new, value, rtol=0, atol=1e-15)


def test_sgd_momentum_accumulates_velocity() -> None:
    optimizer = SGD(learning_rate=0.1, momentum=0.9)
    first_grad, second_grad = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    params = [np.zeros(2)]
    optimizer.step(params, [first_grad])
    optimizer.step(params, [second_grad])
    expected = -0.1 * first_grad - 0.1 * (0.9 * first_grad + second_grad)
    np.testing.assert_allclose(params[0], expected, rtol=0, atol=1e-15)


def test_adam_first_step_moves_by_lr_sign() -> None:
    # At step 1 the bias-corrected moments are g and g², so the move is lr·g/(|g| + ε).
    learning_rate = 0.01
    params = [np.array([0.3, -1.2, 2.0, 0.7]), np.array([5.0])]
    grads = [np.array([0.5, -0.25, 3.0, 0.0]), np.array([-1e-3])]
    expected = [p - learning_rate * np.sign(g) for p, g in zip(params, grads)]
    Adam(learning_rate=learning_rate).step(params, grads)
    for new, value in zip(params, expected):
        # ε = 1e-8 against |g| >= 1e-3 changes the move by at most 1e-5 of lr.
        np.testing.assert_allclose(new, value, rtol=0, atol=learning_rate * 1e-5)


def test_unknown_optimizer_raises_naming_value() -> None:
    with pytest.raises(ValueError, match="'rmsprop'"):
        make_optimizer("rmsprop", 0.1)


def test_output_phases_before_magnitudes_have_zero_gradient(classifier_problem):
    from photonic.reference import exact_gradient

    problem = classifier_problem("triangular")
    network = problem.network
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, problem.x, problem.targets
    )
    masks = network.trainable_masks()
    for gradient, mask in zip(exact.gradients, masks):
        np.testing.assert_allclose(gradient[~mask], 0.0, atol=1e-14)
        assert np.linalg.norm(gradient[mask]) > 1e-6
    assert [int((~mask).sum()) for mask in masks] == [4, 4, 4]
