"""Batch sums swept through layers of cells (photonic.sweep).

Every sum is compared with the same sum formed from the fields that RealisedMesh.forward and
backward record sample by sample, which share no code with the sweep.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import replace

import numpy as np
import pytest

from photonic.detection import DetectorConfig, detect, noise_std
from photonic.hardware import Chip, HardwareConfig, StaticErrors
from photonic.insitu import InSituStep
from photonic.losses import ComplexMSE
from photonic.mesh import TOPOLOGIES, MeshLayout, RealisedMesh
from photonic.network import IdentityActivation, PhotonicNetwork
from photonic import sweep as sweep_module
from photonic.reference import exact_gradient
from photonic.sweep import (
    MeshSweep,
    OpticalPass,
    adjoint_gain,
    batch_monitor_readings,
    batch_powers,
    compose_matrix,
    exact_batch_gradient,
    interference_input,
    measured_batch_gradient,
    propagate,
    propagate_backward,
    reading_variance,
    same_device,
)

MODE_COUNTS = range(2, 17)

LOSSY = HardwareConfig(
    static=StaticErrors(
        coupler_error_std=0.05,
        phase_offset_std=0.1,
        mzi_loss_db=0.3,
        mzi_loss_db_std=0.1,
        arm_imbalance_db_std=0.3,
        waveguide_loss_db=0.05,
    )
)


def lossy_device(n: int, topology: str, seed: int = 3) -> RealisedMesh:
    return Chip(MeshLayout.create(n, topology), LOSSY, seed=seed).device()


def fields(rng: np.random.Generator, batch: int, n: int) -> np.ndarray:
    return rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))


def recorded_gradient(
    device: RealisedMesh, x: np.ndarray, delta: np.ndarray
) -> np.ndarray:
    """Compute −Im Σ_b a·b from the fields recorded sample by sample."""
    _, forward = device.forward(x, record=True)
    _, adjoint = device.backward(delta, record=True)
    return -np.imag(np.sum(forward.stacked() * adjoint.stacked(), axis=0))


def recorded_powers(
    device: RealisedMesh, launched: np.ndarray, direction: str
) -> np.ndarray:
    """Return the powers ``(batch, N²)`` at every shifter from recorded fields."""
    if direction == "forward":
        _, recorded = device.forward(launched, record=True)
    else:
        _, recorded = device.backward(launched, record=True)
    return recorded.powers()


def relative_error(value: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(value - reference) / np.linalg.norm(reference))


# ----------------------------------------------------------------------------- matrix


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", MODE_COUNTS)
def test_matrix_equals_column_propagation(topology: str, n: int) -> None:
    device = lossy_device(n, topology)
    assert np.max(np.abs(compose_matrix(device) - device.matrix())) < 1e-13


def test_transfer_matrix_cached_and_read_only() -> None:
    device = lossy_device(6, "rectangular")
    first = device.transfer_matrix
    assert device.transfer_matrix is first
    with pytest.raises(ValueError):
        first[0, 0] = 0.0


def test_new_phases_give_new_transfer_matrix() -> None:
    device = lossy_device(6, "rectangular")
    shifted = device.with_phases(device.phases + 0.3)
    assert np.max(np.abs(shifted.transfer_matrix - shifted.matrix())) < 1e-13
    assert np.max(np.abs(shifted.transfer_matrix - device.transfer_matrix)) > 1e-3


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_propagate_matches_forward_and_backward(topology: str) -> None:
    device = lossy_device(7, topology)
    rng = np.random.default_rng(0)
    batch = fields(rng, 5, 7)
    assert np.max(np.abs(propagate(device, batch) - device.forward(batch)[0])) < 1e-13
    assert (
        np.max(np.abs(propagate_backward(device, batch) - device.backward(batch)[0]))
        < 1e-13
    )


def test_propagate_keeps_single_vector_shape() -> None:
    device = lossy_device(5, "rectangular")
    vector = np.arange(5) + 1j
    assert propagate(device, vector).shape == (5,)
    assert propagate_backward(device, vector).shape == (5,)


# ------------------------------------------------------------------ exact gradient


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", MODE_COUNTS)
def test_exact_gradient_matches_recorded_fields(topology: str, n: int) -> None:
    device = lossy_device(n, topology, seed=n)
    rng = np.random.default_rng(n)
    x, delta = fields(rng, 7, n), fields(rng, 7, n)
    gradient = exact_batch_gradient(device, x, delta)
    assert gradient.shape == (n * n,)
    assert relative_error(gradient, recorded_gradient(device, x, delta)) < 1e-10


@pytest.mark.parametrize("cell_columns", [1, 2, 3, 5])
def test_exact_gradient_same_for_every_cell_size(cell_columns: int) -> None:
    device = lossy_device(9, "triangular")
    rng = np.random.default_rng(1)
    x, delta = fields(rng, 4, 9), fields(rng, 4, 9)
    default = MeshSweep(device).exact_gradient(x, delta)
    other = MeshSweep(device, cell_columns=cell_columns).exact_gradient(x, delta)
    assert relative_error(other, default) < 1e-12


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_exact_gradient_matches_reference_network(topology: str) -> None:
    chip = Chip(MeshLayout.create(6, topology), LOSSY, seed=11)
    loss = ComplexMSE()
    rng = np.random.default_rng(2)
    x, targets = fields(rng, 5, 6), fields(rng, 5, 6)
    device = chip.device()
    reference = exact_gradient([device], IdentityActivation(), loss, x, targets)
    _, delta = loss.value_and_adjoint(propagate(device, x), targets)
    gradient = exact_batch_gradient(device, x, delta)
    assert relative_error(gradient, reference.gradients[0]) < 1e-10


def test_exact_gradient_without_waveguide_loss() -> None:
    hardware = HardwareConfig(
        static=StaticErrors(mzi_loss_db=0.2, coupler_error_std=0.03)
    )
    device = Chip(MeshLayout.create(10, "rectangular"), hardware, seed=4).device()
    assert device.column_amplitude is None
    rng = np.random.default_rng(3)
    x, delta = fields(rng, 6, 10), fields(rng, 6, 10)
    gradient = exact_batch_gradient(device, x, delta)
    assert relative_error(gradient, recorded_gradient(device, x, delta)) < 1e-10


def test_exact_gradient_falls_back_when_amplitude_zero(
    caplog: pytest.LogCaptureFixture,
) -> None:
    device = lossy_device(6, "rectangular")
    arms = device.arm_amplitude.copy()
    arms[1, 4] = 0.0
    blocked = replace(device, arm_amplitude=arms)
    rng = np.random.default_rng(4)
    x, delta = fields(rng, 5, 6), fields(rng, 5, 6)
    assert not MeshSweep(blocked).invertible
    with caplog.at_level(logging.DEBUG, logger="photonic.sweep"):
        gradient = exact_batch_gradient(blocked, x, delta)
    assert "amplitude is 0" in caplog.text
    # The fallback is the recorded-field computation itself, to the last bit.
    assert np.array_equal(gradient, recorded_gradient(blocked, x, delta))


def weak_device() -> RealisedMesh:
    """A lossy 8-mode mesh whose every other MZI passes 1e-7 of the lower arm's field."""
    device = lossy_device(8, "rectangular")
    arms = device.arm_amplitude.copy()
    arms[1, ::2] = 1e-7
    return replace(device, arm_amplitude=arms)


def test_exact_gradient_falls_back_on_ill_conditioned_cells(
    caplog: pytest.LogCaptureFixture,
) -> None:
    weak = weak_device()
    rng = np.random.default_rng(5)
    x, delta = fields(rng, 5, 8), fields(rng, 5, 8)
    assert MeshSweep(weak).invertible
    with caplog.at_level(logging.DEBUG, logger="photonic.sweep"):
        gradient = exact_batch_gradient(weak, x, delta)
    assert "condition product" in caplog.text
    assert np.array_equal(gradient, recorded_gradient(weak, x, delta))


def test_exact_gradient_keeps_well_conditioned_cells(
    caplog: pytest.LogCaptureFixture,
) -> None:
    device = lossy_device(8, "rectangular")
    rng = np.random.default_rng(5)
    x, delta = fields(rng, 5, 8), fields(rng, 5, 8)
    with caplog.at_level(logging.DEBUG, logger="photonic.sweep"):
        exact_batch_gradient(device, x, delta)
    assert "recorded fields" not in caplog.text


def test_large_mesh_sweep_falls_back_on_large_residual(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without kept partial products the sweep S ← B S B⁻¹ multiplies by every cell's
    # inverse. With the conditioning limit lifted, its residual must catch the growth.
    monkeypatch.setattr(sweep_module, "PARTIALS_BUDGET_BYTES", 0)
    monkeypatch.setattr(
        sweep_module, "EXACT_CONDITION_LIMIT", {np.dtype(np.complex128): np.inf}
    )
    weak = weak_device()
    rng = np.random.default_rng(5)
    x, delta = fields(rng, 5, 8), fields(rng, 5, 8)
    with caplog.at_level(logging.DEBUG, logger="photonic.sweep"):
        gradient = exact_batch_gradient(weak, x, delta)
    assert "residual" in caplog.text
    assert np.array_equal(gradient, recorded_gradient(weak, x, delta))


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", [5, 16])
def test_exact_gradient_same_with_and_without_kept_partials(
    topology: str, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = lossy_device(n, topology, seed=n + 1)
    rng = np.random.default_rng(n)
    x, delta = fields(rng, 9, n), fields(rng, 9, n)
    with_partials = exact_batch_gradient(device, x, delta)
    monkeypatch.setattr(sweep_module, "PARTIALS_BUDGET_BYTES", 0)
    swept = exact_batch_gradient(device.with_phases(device.phases), x, delta)
    assert relative_error(with_partials, swept) < 1e-12
    assert relative_error(swept, recorded_gradient(device, x, delta)) < 1e-10


@pytest.mark.parametrize(
    ("mzi_loss_db", "cell_columns"), [(20.0, 12), (30.0, 8), (30.0, 4)]
)
def test_exact_gradient_of_uniformly_lossy_mzis(
    mzi_loss_db: float, cell_columns: int
) -> None:
    # Equal loss in both arms gives a 2×2 block a condition number of 1, but inside a
    # cell X ← E·X·E⁻¹ scales the site's rows against the other modes. Each entry must
    # still be right to rounding, or the sum must come from recorded fields.
    hardware = HardwareConfig(
        static=StaticErrors(
            coupler_error_std=0.05, mzi_loss_db=mzi_loss_db, phase_offset_std=0.1
        )
    )
    device = Chip(MeshLayout.create(32, "rectangular"), hardware, seed=3).device()
    rng = np.random.default_rng(12)
    x, delta = fields(rng, 4, 32), fields(rng, 4, 32)
    reference = recorded_gradient(device, x, delta)
    _, forward = device.forward(x, record=True)
    _, adjoint = device.backward(delta, record=True)
    scale = np.sum(np.abs(forward.stacked() * adjoint.stacked()), axis=0)
    gradient = MeshSweep(device, cell_columns=cell_columns).exact_gradient(x, delta)
    assert relative_error(gradient, reference) < 1e-10
    assert np.max(np.abs(gradient - reference) / scale) < 1e-10


def coupler_case() -> tuple[MeshLayout, np.ndarray, np.ndarray]:
    layout = MeshLayout.create(6, "rectangular")
    phases = np.random.default_rng(0).uniform(0, 2 * np.pi, layout.n_phases)
    return layout, phases, np.ones((2, layout.n_mzis))


def composed_matches_columns(device: RealisedMesh) -> bool:
    swept = MeshSweep(device).matrix()
    return bool(np.allclose(swept, device.matrix(), rtol=0, atol=1e-12))


def test_coupler_terms_follow_angles_changed_in_place() -> None:
    layout, phases, arms = coupler_case()
    angles = np.full((2, layout.n_mzis), np.pi / 4)
    alias = angles[:]
    angles.setflags(write=False)
    assert composed_matches_columns(RealisedMesh(layout, phases, angles, arms))
    alias += 0.2
    assert composed_matches_columns(RealisedMesh(layout, phases, angles, arms))


def test_coupler_terms_safe_across_threads() -> None:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    errors: list[BaseException] = []

    def look_up_many(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(3000):
                angles = np.full((2, 1), np.pi / 4 + rng.normal(0, 0.01))
                cosines, _ = sweep_module._coupler_terms(angles)
                assert np.array_equal(cosines, np.cos(angles))
        except Exception as error:  # noqa: BLE001 - any error fails the test below
            errors.append(error)

    threads = [threading.Thread(target=look_up_many, args=(s,)) for s in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert errors == []


def test_complex64_overflow_named_as_overflow() -> None:
    device = lossy_device(8, "rectangular")
    launched = np.full((4, 8), 1e30, dtype=complex)
    with pytest.raises(ValueError, match="overflow complex64.*use complex128"):
        batch_powers(device, launched, "forward", dtype=np.complex64)


def test_batch_powers_overflow_named_as_overflow() -> None:
    # At this scale the Gram matrix is finite but the swept sums overflow.
    device = lossy_device(8, "rectangular")
    launched = fields(np.random.default_rng(0), 16, 8) * 2e153
    with pytest.raises(ValueError, match="overflow complex128"):
        batch_powers(device, launched, "forward")


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (2.0, r"shape \(\); expected \(6,\) or \(stack, 6\)"),
        (np.ones((0, 6)), "at least one row"),
        (np.ones((2, 2, 6)), r"shape \(2, 2, 6\)"),
        (np.ones(6) * (1 + 1j), "weights are complex"),
    ],
    ids=["scalar", "empty-stack", "three-axes", "complex"],
)
def test_batch_powers_reject_bad_weights(weights: object, message: str) -> None:
    device = lossy_device(5, "rectangular")
    with pytest.raises(ValueError, match=message):
        batch_powers(device, np.ones((6, 5), dtype=complex), "forward", weights)


@pytest.mark.parametrize("dtype", [None, "foo", np.float64])
def test_sweep_rejects_unsupported_dtype(dtype: object) -> None:
    device = lossy_device(4, "rectangular")
    with pytest.raises(ValueError, match="sweep dtype .* is unsupported"):
        MeshSweep(device, dtype=dtype)


def test_sweep_rejects_cells_wider_than_mesh() -> None:
    device = lossy_device(8, "rectangular")
    with pytest.raises(ValueError, match="cell_columns 1000 is invalid; .* from 1 to 8"):
        MeshSweep(device, cell_columns=1000)
    assert MeshSweep(device, cell_columns=8).n_layers >= 1


def test_measured_gradient_names_short_adjoint_batch() -> None:
    device = lossy_device(6, "rectangular")
    rng = np.random.default_rng(3)
    x = fields(rng, 8, 6)
    with pytest.raises(ValueError, match="adjoint pass has 5 samples but the forward"):
        measured_batch_gradient(
            OpticalPass(device, x),
            OpticalPass(device, fields(rng, 5, 6)),
            OpticalPass(device, x),
            np.ones(8),
        )


def test_measured_gradient_rejects_infinite_power_factors() -> None:
    device = lossy_device(6, "rectangular")
    x = fields(np.random.default_rng(4), 8, 6)
    factors = np.ones(36)
    factors[3] = np.inf
    with pytest.raises(ValueError, match="positive finite numbers"):
        measured_batch_gradient(
            OpticalPass(device, x),
            OpticalPass(device, x),
            OpticalPass(device, x),
            np.ones(8),
            power_factors=factors,
        )


def test_kept_partials_not_shared_between_live_devices() -> None:
    # A sweep that is gone hands its buffer of partial products to the next device. A
    # live device must keep its own, whatever is built or dropped after it.
    base = lossy_device(12, "rectangular")
    rng = np.random.default_rng(9)
    x, delta = fields(rng, 6, 12), fields(rng, 6, 12)
    live = base.with_phases(base.phases + 0.2)
    expected = recorded_gradient(live, x, delta)
    assert relative_error(exact_batch_gradient(live, x, delta), expected) < 1e-10
    for shift in np.linspace(0.3, 1.5, 5):
        other = base.with_phases(base.phases + shift)
        other_gradient = exact_batch_gradient(other, x, delta)
        reference = recorded_gradient(other, x, delta)
        assert relative_error(other_gradient, reference) < 1e-10
        del other
    again = exact_batch_gradient(live.with_phases(live.phases), x, delta)
    assert relative_error(exact_batch_gradient(live, x, delta), expected) < 1e-10
    assert relative_error(again, expected) < 1e-10


def test_exact_gradient_complex64_close_to_complex128() -> None:
    device = lossy_device(16, "rectangular")
    rng = np.random.default_rng(6)
    x, delta = fields(rng, 32, 16), fields(rng, 32, 16)
    double = exact_batch_gradient(device, x, delta)
    single = exact_batch_gradient(device, x, delta, dtype=np.complex64)
    # Single precision rounds at about 1e-7, so the two must differ, but only a little.
    assert relative_error(single, double) > 1e-10
    assert relative_error(single, double) < 1e-5


# --------------------------------------------------------------------- power sums


@pytest.mark.parametrize("direction", ["forward", "adjoint"])
@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("n", MODE_COUNTS)
def test_batch_powers_match_recorded_fields(
    direction: str, topology: str, n: int
) -> None:
    device = lossy_device(n, topology, seed=n + 1)
    rng = np.random.default_rng(n + 20)
    launched = fields(rng, 6, n)
    weights = rng.uniform(-0.5, 2.0, 6)
    sums = batch_powers(device, launched, direction, weights)
    reference = weights @ recorded_powers(device, launched, direction)
    assert relative_error(sums, reference) < 1e-10


@pytest.mark.parametrize("direction", ["forward", "adjoint"])
def test_batch_powers_with_zero_amplitude(direction: str) -> None:
    device = lossy_device(7, "triangular")
    arms = device.arm_amplitude.copy()
    arms[0, 2] = 0.0
    blocked = replace(device, arm_amplitude=arms)
    rng = np.random.default_rng(7)
    launched = fields(rng, 4, 7)
    sums = batch_powers(blocked, launched, direction)
    reference = recorded_powers(blocked, launched, direction).sum(axis=0)
    assert relative_error(sums, reference) < 1e-10


@pytest.mark.parametrize("stack", [2, 3])
def test_stacked_weights_equal_separate_sums(stack: int) -> None:
    device = lossy_device(8, "rectangular")
    rng = np.random.default_rng(8)
    launched = fields(rng, 5, 8)
    rows = rng.uniform(0.0, 1.0, (stack, 5))
    stacked = batch_powers(device, launched, "adjoint", rows)
    assert stacked.shape == (stack, 64)
    for row, sums in zip(rows, stacked):
        separate = batch_powers(device, launched, "adjoint", row)
        assert relative_error(sums, separate) < 1e-12


def test_combined_powers_sum_both_weightings() -> None:
    device = lossy_device(6, "rectangular")
    rng = np.random.default_rng(9)
    first, second = fields(rng, 4, 6), fields(rng, 3, 6)
    w1, v1 = rng.uniform(0, 1, 4), rng.uniform(0, 1, 4)
    w2 = rng.uniform(0, 1, 3)
    combined = MeshSweep(device).combined_powers(
        [(first, w1, v1), (second, w2, None)], "forward"
    )
    power1 = recorded_powers(device, first, "forward")
    power2 = recorded_powers(device, second, "forward")
    assert relative_error(combined[0], w1 @ power1 + w2 @ power2) < 1e-10
    assert relative_error(combined[1], v1 @ power1) < 1e-10


# ---------------------------------------------------------------- monitor readings


def test_reading_variance_of_pai_monitor() -> None:
    assert reading_variance(DetectorConfig.pai2023(0.02)) == (0.0, 0.02)
    assert reading_variance(DetectorConfig.ideal()) == (0.0, 0.0)


def test_reading_variance_of_shot_and_amplifier_noise() -> None:
    monitor = DetectorConfig(
        tap_fraction=0.02,
        shot_noise=True,
        thermal_noise_a_per_rthz=1e-12,
        dark_current_a=1e-9,
        bandwidth_hz=1e6,
    )
    c0, c1 = reading_variance(monitor)
    for power in (0.0, 0.3, 1.7):
        assert c0 + c1 * power == pytest.approx(float(noise_std(power, monitor)) ** 2)


def test_reading_variance_rejects_adc() -> None:
    assert reading_variance(DetectorConfig(adc_bits=10)) is None


def test_noiseless_readings_equal_true_sums() -> None:
    device = lossy_device(5, "rectangular")
    rng = np.random.default_rng(10)
    launched = fields(rng, 6, 5)
    weights = rng.uniform(0.5, 1.5, 6)
    readings = batch_monitor_readings(device, launched, "forward", weights=weights)
    assert (
        relative_error(readings, batch_powers(device, launched, "forward", weights))
        < 1e-14
    )


def test_pai_readings_have_summed_mean_and_variance() -> None:
    device = lossy_device(4, "rectangular")
    rng = np.random.default_rng(11)
    launched = fields(rng, 5, 4)
    weights = rng.uniform(0.3, 2.0, 5)
    k = 0.01
    monitor = DetectorConfig.pai2023(k)

    draws = 2000
    noise = np.random.default_rng(12)
    readings = np.array(
        [
            batch_monitor_readings(device, launched, "adjoint", monitor, noise, weights)
            for _ in range(draws)
        ]
    )
    mean = batch_powers(device, launched, "adjoint", weights)
    # Σ_b w_b²·k·P_b: the variance of a weighted sum of independent readings.
    variance = k * batch_powers(device, launched, "adjoint", weights**2)
    deviation = np.abs(readings.mean(axis=0) - mean) / np.sqrt(variance / draws)
    ratio = readings.var(axis=0) / variance
    # With 2000 draws the variance estimate has a relative spread of about 3 %.
    assert np.all(deviation < 5)
    assert np.all(ratio > 0.84)
    assert np.all(ratio < 1.16)


def test_adc_readings_are_drawn_per_sample() -> None:
    device = lossy_device(4, "triangular")
    rng = np.random.default_rng(13)
    launched = fields(rng, 6, 4)
    weights = rng.uniform(0.5, 1.5, 6)
    monitor = DetectorConfig(pai_k=0.01, adc_bits=8, launch_power_w=1e-3)
    readings = batch_monitor_readings(
        device, launched, "forward", monitor, np.random.default_rng(14), weights
    )
    per_sample = detect(
        recorded_powers(device, launched, "forward"),
        monitor,
        np.random.default_rng(14),
    )
    assert np.array_equal(readings, weights @ per_sample)


def test_noisy_monitor_without_rng_raises() -> None:
    device = lossy_device(4, "rectangular")
    launched = fields(np.random.default_rng(15), 2, 4)
    with pytest.raises(ValueError, match="rng is missing"):
        batch_monitor_readings(device, launched, "forward", DetectorConfig.pai2023(0.1))


# --------------------------------------------------------------- measured gradient


@pytest.mark.parametrize("loss_correction", [False, True])
@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_measured_gradient_equals_insitu_step(
    topology: str, loss_correction: bool
) -> None:
    chip = Chip(MeshLayout.create(7, topology), LOSSY, seed=4)
    network = PhotonicNetwork([chip], IdentityActivation(), ComplexMSE())
    rng = np.random.default_rng(16)
    x, targets = fields(rng, 9, 7), fields(rng, 9, 7)
    step = InSituStep(network, x, targets, loss_correction=loss_correction)
    step.forward_pass(0)
    step.adjoint_pass(0)
    step.interference_pass(0)

    device = chip.device()
    _, delta = ComplexMSE().value_and_adjoint(propagate(device, x), targets)
    gain, weights = adjoint_gain(x, delta)
    source = delta * gain[:, None]
    adjoint_out = propagate_backward(device, source)
    gradient = measured_batch_gradient(
        OpticalPass(device, x),
        OpticalPass(device, source),
        OpticalPass(device, x - 1j * np.conj(adjoint_out)),
        weights,
        power_factors=chip.nominal_power_factors() if loss_correction else None,
    )
    assert relative_error(gradient, step.gradients[0]) < 1e-10


def test_measured_gradient_with_different_pass_devices() -> None:
    device = lossy_device(6, "rectangular")
    rng = np.random.default_rng(17)
    noisy = [
        device.with_phases(device.phases + 0.01 * rng.standard_normal(36))
        for _ in range(2)
    ]
    x, source, summed = fields(rng, 5, 6), fields(rng, 5, 6), fields(rng, 5, 6)
    weights = rng.uniform(0.5, 1.5, 5)
    gradient = measured_batch_gradient(
        OpticalPass(device, x),
        OpticalPass(noisy[0], source),
        OpticalPass(noisy[1], summed),
        weights,
    )
    per_sample = 0.5 * (
        recorded_powers(noisy[1], summed, "forward")
        - recorded_powers(device, x, "forward")
        - recorded_powers(noisy[0], source, "adjoint")
    )
    assert relative_error(gradient, weights @ per_sample) < 1e-10


def test_measured_difference_noise_adds_both_passes() -> None:
    device = lossy_device(4, "rectangular")
    rng = np.random.default_rng(18)
    x, summed, source = fields(rng, 4, 4), fields(rng, 4, 4), fields(rng, 4, 4)
    weights = rng.uniform(0.5, 1.5, 4)
    k = 0.02
    monitor = DetectorConfig.pai2023(k)
    quiet = DetectorConfig.ideal()

    noise = np.random.default_rng(19)
    draws = 2000
    gradients = np.array(
        [
            measured_batch_gradient(
                OpticalPass(device, x, monitor),
                OpticalPass(device, source, quiet),
                OpticalPass(device, summed, monitor),
                weights,
                noise,
            )
            for _ in range(draws)
        ]
    )

    # P_sum − P_fwd carries the noise of both passes, and the gradient halves it.
    squared = weights**2
    both = batch_powers(device, summed, "forward", squared) + batch_powers(
        device, x, "forward", squared
    )
    variance = 0.25 * k * both
    ratio = gradients.var(axis=0) / variance
    assert np.all(ratio > 0.84)
    assert np.all(ratio < 1.16)


def test_adjoint_gain_matches_input_power() -> None:
    rng = np.random.default_rng(20)
    x, delta = fields(rng, 4, 3), fields(rng, 4, 3)
    delta[2] = 0.0
    gain, weights = adjoint_gain(x, delta, output_scale=2.0)
    launched_power = 4.0 * np.sum(np.abs(delta * gain[:, None]) ** 2, axis=1)
    input_power = np.sum(np.abs(x) ** 2, axis=1)
    assert np.allclose(launched_power[[0, 1, 3]], input_power[[0, 1, 3]])
    assert gain[2] == 0.0
    assert weights[2] == 0.0
    assert np.allclose(weights[[0, 1, 3]] * gain[[0, 1, 3]], 1.0)


def test_same_device_compares_every_array() -> None:
    device = lossy_device(5, "rectangular")
    assert same_device(device, device.with_phases(device.phases.copy()))
    assert not same_device(device, device.with_phases(device.phases + 1e-9))
    arms = device.arm_amplitude.copy()
    arms[0, 0] *= 0.5
    assert not same_device(device, replace(device, arm_amplitude=arms))


# ------------------------------------------------------------------------- inputs


def test_rejects_unsupported_dtype() -> None:
    with pytest.raises(ValueError, match="complex128 or complex64"):
        MeshSweep(lossy_device(4, "rectangular"), dtype=np.float64)


@pytest.mark.parametrize("cell_columns", [0, -1, 2.5, True])
def test_rejects_invalid_cell_columns(cell_columns: object) -> None:
    with pytest.raises(ValueError, match="cell_columns"):
        MeshSweep(lossy_device(4, "rectangular"), cell_columns=cell_columns)


def test_rejects_unknown_direction() -> None:
    device = lossy_device(4, "rectangular")
    with pytest.raises(ValueError, match="direction 'sideways'"):
        batch_powers(device, np.ones((2, 4)), "sideways")


def test_rejects_fields_of_wrong_width() -> None:
    device = lossy_device(4, "rectangular")
    with pytest.raises(ValueError, match=r"expected \(batch, 4\)"):
        exact_batch_gradient(device, np.ones((2, 5)), np.ones((2, 5)))


def test_rejects_nan_fields() -> None:
    device = lossy_device(4, "rectangular")
    x = np.ones((2, 4), dtype=complex)
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        propagate(device, x)


@pytest.mark.parametrize("blocked", [False, True], ids=["sweep", "recorded"])
@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("name", ["x", "delta"])
def test_exact_gradient_rejects_non_finite_fields(
    name: str, bad: float, blocked: bool
) -> None:
    device = lossy_device(4, "rectangular")
    if blocked:
        arms = device.arm_amplitude.copy()
        arms[1, 0] = 0.0
        device = replace(device, arm_amplitude=arms)
    fields = {
        "x": np.ones((2, 4), dtype=complex),
        "delta": np.ones((2, 4), dtype=complex),
    }
    fields[name][1, 2] = bad
    with pytest.raises(ValueError, match=f"{name} contains NaN or infinity"):
        exact_batch_gradient(device, fields["x"], fields["delta"])


@pytest.mark.parametrize("direction", ["forward", "adjoint"])
def test_batch_powers_reject_non_finite_fields(direction: str) -> None:
    device = lossy_device(8, "rectangular")
    fields = np.ones((40, 8), dtype=complex)
    fields[3, 5] = np.inf
    with pytest.raises(ValueError, match="fields contains NaN or infinity"):
        batch_powers(device, fields, direction)


def test_combined_powers_reject_nan_fields() -> None:
    device = lossy_device(8, "rectangular")
    fields = np.ones((40, 8), dtype=complex)
    fields[0, 0] = np.nan
    with pytest.raises(ValueError, match="fields contains NaN or infinity"):
        MeshSweep(device).combined_powers([(fields, np.ones(40), None)], "forward")


@pytest.mark.parametrize("shape", [(6, 5), (5,)], ids=["batch", "single"])
def test_interference_input_formula(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    adjoint_out = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    launched = interference_input(x, adjoint_out)
    assert launched.shape == shape
    np.testing.assert_allclose(launched, x - 1j * np.conj(adjoint_out), rtol=0, atol=0)


def test_rejects_batches_of_different_sizes() -> None:
    device = lossy_device(4, "rectangular")
    with pytest.raises(ValueError, match="every sample needs its adjoint source"):
        exact_batch_gradient(device, np.ones((3, 4)), np.ones((2, 4)))


def test_rejects_weights_of_wrong_length() -> None:
    device = lossy_device(4, "rectangular")
    with pytest.raises(ValueError, match="one per sample"):
        batch_powers(device, np.ones((3, 4)), "forward", np.ones(2))


def test_rejects_non_positive_power_factors() -> None:
    device = lossy_device(4, "rectangular")
    launched = np.ones((2, 4), dtype=complex)
    passes = [OpticalPass(device, launched) for _ in range(3)]
    with pytest.raises(ValueError, match="power_factors"):
        measured_batch_gradient(*passes, np.ones(2), power_factors=np.zeros(16))
