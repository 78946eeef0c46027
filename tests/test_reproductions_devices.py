"""Device reproductions: the fidelity of Fang et al. (2019), rectangular against
triangular meshes, and the gradient error of Pai et al. (2023). Closed-form and
invariant checks of their point functions, and a smoke run of each reproduction."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from experiments.reproduce import (
    REPRODUCTION_SUMMARIES,
    REPRODUCTIONS,
    format_reproduction_list,
    run_reproduction,
)
from experiments.reproductions import clements_vs_reck, fang2019
from experiments.reproductions import pai2023_gradient_error as pai
from experiments.reproductions.figures import (
    PlainLogFormatter,
    legend_below,
    save_figure,
)
from photonic.decompose import decompose_reck
from photonic.hardware import Chip, HardwareConfig
from photonic.mesh import MeshLayout, RealisedMesh
from photonic.mzi import QUARTER_PI
from photonic.network import IdentityActivation, PhotonicNetwork
from photonic.reference import exact_gradient, finite_difference_gradient


def seed(*key: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(5, spawn_key=key)


# --- Fang et al. (2019) ---------------------------------------------------------------


def test_fang_fidelity_is_one_without_errors():
    result = fang2019.point({"n_modes": 8, "sigma": 0.0}, seed(0))

    assert result["fidelity"] == pytest.approx(1.0, abs=1e-12)
    assert result["fidelity_phase_only"] == pytest.approx(1.0, abs=1e-12)
    assert result["fidelity_coupler_only"] == pytest.approx(1.0, abs=1e-12)
    assert result["reconstruction_error"] < 1e-10


def test_fang_fidelity_at_most_one_with_errors():
    for index in range(5):
        result = fang2019.point({"n_modes": 8, "sigma": 0.05}, seed(index))

        assert 0.0 <= result["fidelity"] <= 1.0 + 1e-12
        assert result["fidelity"] < 1.0


def test_fang_fidelity_of_global_phase_is_one():
    rng = np.random.default_rng(3)
    target = fang2019.haar_unitary(5, rng)

    assert fang2019.fidelity(np.exp(0.7j) * target, target) == pytest.approx(1.0)


def test_fang_fidelity_of_one_phase_error_closed_form():
    # A phase error δ on one mode of U0 gives Tr(U†U0)/N = (N − 1 + e^{−iδ})/N.
    n_modes, delta = 6, 0.3
    target = fang2019.haar_unitary(n_modes, np.random.default_rng(4))
    realised = np.diag(np.r_[np.exp(1j * delta), np.ones(n_modes - 1)]) @ target
    expected = abs((n_modes - 1 + np.exp(-1j * delta)) / n_modes) ** 2

    assert fang2019.fidelity(realised, target) == pytest.approx(expected, rel=1e-12)


def test_fang_coupler_reflection_amplitude_is_exact():
    reflection = np.array([0.5, 1 / math.sqrt(2), 0.8])
    angles = fang2019.coupler_angles_from_reflection(reflection)

    assert np.allclose(np.cos(angles), reflection, atol=1e-15)
    assert angles[1] == pytest.approx(QUARTER_PI, abs=1e-15)


def test_fang_realised_coupler_cross_state_leakage():
    # One MZI in the cross state (θ = 0, ideal phases) leaks r1·r2 − t1·t2 into the bar
    # port, for couplers of reflection r and transmission t = sqrt(1 − r²).
    layout = MeshLayout.create(2, "rectangular")
    normal = np.array([[1.0], [-0.5]])
    sigma = 0.1
    device = fang2019.imprecise_mesh(
        layout, np.zeros(layout.n_phases), sigma, np.zeros(layout.n_phases), normal
    )
    r1, r2 = 1 / math.sqrt(2) + sigma * normal[:, 0]
    t1, t2 = math.sqrt(1 - r1**2), math.sqrt(1 - r2**2)

    assert abs(device.matrix()[0, 0]) == pytest.approx(abs(r1 * r2 - t1 * t2))


def test_fang_mean_infidelity_matches_second_order_estimate():
    n_modes, sigma, trials = 8, 2e-3, 40
    infidelities = [
        1 - fang2019.point({"n_modes": n_modes, "sigma": sigma}, seed(i))["fidelity"]
        for i in range(trials)
    ]
    expected = 1 - fang2019.estimated_fidelity(sigma, n_modes)

    assert np.mean(infidelities) == pytest.approx(expected, rel=0.1)


def test_fang_point_is_deterministic():
    params = {"n_modes": 6, "sigma": 0.02}

    assert fang2019.point(params, seed(1)) == fang2019.point(params, seed(1))


def test_fang_point_rejects_negative_sigma():
    with pytest.raises(ValueError, match="sigma"):
        fang2019.check_params({"n_modes": 8, "sigma": -0.1})


# --- rectangular against triangular ---------------------------------------------------


@pytest.mark.parametrize("topology", ["rectangular", "triangular"])
def test_clements_lossless_mesh_has_unit_singular_values(topology):
    params = {
        "topology": topology,
        "n_modes": 8,
        "error": [clements_vs_reck.COUPLER, 0.05],
    }
    result = clements_vs_reck.point(params, seed(2))

    assert result["singular_max"] == pytest.approx(1.0, abs=1e-12)
    assert result["singular_min"] == pytest.approx(1.0, abs=1e-12)
    assert result["transmission"] == pytest.approx(1.0, abs=1e-12)
    assert result["fidelity"] == pytest.approx(result["normalised_fidelity"], abs=1e-12)


@pytest.mark.parametrize("topology", ["rectangular", "triangular"])
def test_clements_ideal_mesh_fidelity_is_one(topology):
    params = {"topology": topology, "n_modes": 6, "error": [clements_vs_reck.LOSS, 0.0]}
    result = clements_vs_reck.point(params, seed(3))

    assert result["fidelity"] == pytest.approx(1.0, abs=1e-12)
    assert result["spread"] == pytest.approx(1.0, abs=1e-12)


def test_clements_two_mode_loss_is_uniform():
    # One MZI with equal loss in both arms scales the matrix by 10^(−L/20).
    loss_db = 0.8
    params = {
        "topology": "rectangular",
        "n_modes": 2,
        "error": [clements_vs_reck.LOSS, loss_db],
    }
    result = clements_vs_reck.point(params, seed(4))

    assert result["spread"] == pytest.approx(1.0, abs=1e-12)
    assert result["transmission"] == pytest.approx(10 ** (-loss_db / 10))
    assert result["normalised_fidelity"] == pytest.approx(1.0, abs=1e-12)


def test_clements_loss_spreads_triangular_more():
    def spread(topology: str) -> float:
        params = {
            "topology": topology,
            "n_modes": 16,
            "error": [clements_vs_reck.LOSS, 1.0],
        }
        return clements_vs_reck.point(params, seed(5))["spread"]

    assert spread("rectangular") < spread("triangular")


def test_clements_normalised_fidelity_ignores_scale():
    target = fang2019.haar_unitary(4, np.random.default_rng(6))

    assert clements_vs_reck.normalised_fidelity(0.3j * target, target) == pytest.approx(
        1.0
    )


def test_clements_spread_of_diagonal_matrix():
    spread, largest, smallest = clements_vs_reck.singular_value_spread(
        np.diag([0.5, 2.0, 1.0])
    )

    assert spread == pytest.approx(4.0)
    assert largest == pytest.approx(2.0)
    assert smallest == pytest.approx(0.5)


def test_clements_point_rejects_unknown_error_field():
    params = {"topology": "rectangular", "n_modes": 4, "error": ["heater", 0.1]}

    with pytest.raises(ValueError, match="error"):
        clements_vs_reck.check_params(params)


# --- Pai et al. (2023) gradient error -------------------------------------------------


def test_pai_port_loss_adjoint_matches_finite_differences():
    layout = MeshLayout.create(4, "triangular")
    rng = np.random.default_rng(7)
    device = RealisedMesh.ideal(layout, rng.uniform(0, 2 * np.pi, layout.n_phases))
    target = fang2019.haar_unitary(4, rng)
    ports = np.array([1, 3])
    x = np.conj(target[ports, :])
    loss = pai.PortPowerLoss()

    exact = exact_gradient([device], IdentityActivation(), loss, x, ports).flat()
    numeric = finite_difference_gradient(
        [device], IdentityActivation(), loss, x, ports
    )[0]

    assert np.allclose(exact, numeric, atol=1e-8)


def test_pai_port_loss_is_zero_at_target():
    target = fang2019.haar_unitary(4, np.random.default_rng(8))
    ports = np.arange(4)
    outputs = np.conj(target[ports, :]) @ target.T
    value, delta = pai.PortPowerLoss().value_and_adjoint(outputs, ports)

    assert value == pytest.approx(0.0, abs=1e-12)
    assert np.count_nonzero(np.abs(delta) > 0) == 4


def test_pai_gradient_error_vanishes_without_noise():
    for index in range(3):
        params = {"sigma": 0.3, "batch": 2, "monitor_k": 0.0}
        result = pai.point(params, seed(index))

        assert result["cosine_distance"] == pytest.approx(0.0, abs=1e-12)
        assert result["relative_error"] < 1e-10
        assert result["loss"] > 0


def test_pai_exact_gradient_is_zero_at_unperturbed_target():
    layout = MeshLayout.create(4, "triangular")
    target = fang2019.haar_unitary(4, np.random.default_rng(9))
    chip = Chip(layout, HardwareConfig(), seed=1, phases=decompose_reck(target))
    network = PhotonicNetwork([chip], IdentityActivation(), pai.PortPowerLoss())
    ports = np.array([0, 2])
    x = np.conj(target[ports, :])

    result = exact_gradient(
        network.devices(), network.activation, network.loss, x, ports
    )

    assert result.loss == pytest.approx(0.0, abs=1e-12)
    assert np.max(np.abs(result.flat())) < 1e-10


def test_pai_monitor_noise_gives_gradient_error():
    params = {"sigma": 0.2, "batch": 1, "monitor_k": 0.01}
    result = pai.point(params, seed(0))

    assert 0.0 < result["cosine_distance"] <= 2.0


def test_pai_point_rejects_batch_above_modes():
    with pytest.raises(ValueError, match="batch"):
        pai.check_params({"sigma": 0.1, "batch": 5})


# --- smoke runs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["fang2019-fidelity", "clements-vs-reck", "pai2023-gradient-error"]
)
def test_smoke_run_writes_report(tmp_path, name):
    result, report = run_reproduction(name, tmp_path, size="smoke", progress=False)
    folder = report.parent

    assert report.is_file()
    assert (folder / "summary.json").is_file()
    assert (folder / "provenance.jsonl").is_file()
    assert (folder / "points.jsonl").is_file()
    assert result.figures
    for figure in result.figures:
        assert figure.parent == folder
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert figure.name in report.read_text(encoding="utf-8")
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["name"] == name
    assert len(summary["targets"]) == len(result.targets)


def test_smoke_rerun_reuses_points(tmp_path):
    run_reproduction("fang2019-fidelity", tmp_path, size="smoke", progress=False)
    points = tmp_path / "reproduce" / "fang2019-fidelity-smoke" / "points.jsonl"
    before = points.read_text(encoding="utf-8")

    run_reproduction("fang2019-fidelity", tmp_path, size="smoke", progress=False)

    assert points.read_text(encoding="utf-8") == before


# --- registry ---------------------------------------------------------------------------


def test_unimportable_module_error_names_import_error(tmp_path, monkeypatch):
    (tmp_path / "broken_reproduction.py").write_text(
        "import no_such_dependency_for_reproduction\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(REPRODUCTIONS, "broken", "broken_reproduction:run")

    with pytest.raises(ValueError) as raised:
        run_reproduction("broken", tmp_path / "results", progress=False)

    message = str(raised.value)
    assert "'broken_reproduction' cannot be imported" in message
    assert "ModuleNotFoundError" in message
    assert "no_such_dependency_for_reproduction" in message
    assert isinstance(raised.value.__cause__, ImportError)
    assert not (tmp_path / "results").exists()


def test_missing_module_error_names_module(tmp_path, monkeypatch):
    monkeypatch.setitem(REPRODUCTIONS, "absent", "no_such_reproduction_module:run")

    with pytest.raises(ValueError, match="'no_such_reproduction_module' cannot be"):
        run_reproduction("absent", tmp_path, progress=False)


def test_missing_function_error_names_function(tmp_path, monkeypatch):
    monkeypatch.setitem(REPRODUCTIONS, "nameless", "experiments.reproduce:no_such_run")

    with pytest.raises(ValueError, match="has no function 'no_such_run'"):
        run_reproduction("nameless", tmp_path, progress=False)


def test_every_reproduction_has_summary():
    assert set(REPRODUCTION_SUMMARIES) == set(REPRODUCTIONS)
    for name, summary in REPRODUCTION_SUMMARIES.items():
        assert summary.strip(), name
        assert "\n" not in summary, name


def test_reproduction_list_aligns_descriptions():
    lines = format_reproduction_list().splitlines()

    assert [line.split()[0] for line in lines] == list(REPRODUCTIONS)
    width = max(len(name) for name in REPRODUCTIONS)
    for line, name in zip(lines, REPRODUCTIONS):
        assert line[: width + 2].rstrip() == name
        assert line[width + 2 :] == REPRODUCTION_SUMMARIES[name]


# --- figure layout ----------------------------------------------------------------------


def test_plain_log_labels_inside_three_decades():
    formatter = PlainLogFormatter(labelOnlyBase=False)

    assert formatter(1.1) == r"$\mathdefault{1.1}$"
    assert formatter(0.02) == r"$\mathdefault{0.02}$"
    assert formatter(300.0) == r"$\mathdefault{300}$"


def test_plain_log_labels_powers_outside_three_decades():
    formatter = PlainLogFormatter(labelOnlyBase=False)

    assert formatter(1e5) == r"$\mathdefault{10^{5}}$"
    assert formatter(1e-4) == r"$\mathdefault{10^{-4}}$"


def test_legend_below_sits_under_axes(tmp_path):
    figure = Figure(figsize=(4.0, 3.0))
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], label="line")
    axes.set_xlabel("x")
    legend = legend_below(axes)

    save_figure(figure, tmp_path / "figure.png", dpi=50)
    figure.canvas.draw()

    renderer = figure.canvas.get_renderer()
    legend_box = legend.get_window_extent(renderer)
    label_box = axes.xaxis.label.get_window_extent(renderer)
    assert legend_box.y1 < axes.get_window_extent(renderer).y0
    assert legend_box.y1 <= label_box.y0
