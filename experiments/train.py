"""The training experiment: in situ training of a photonic network beside a digital baseline.

One run loads a dataset offline and encodes it into input amplitudes. It trains a network of
mesh layers by measured in situ gradients on a chip with the configured hardware errors, and
every training step runs through the SimPy model so each pass runs at its simulated time. It
then trains the digital baseline on the same split and writes a results folder:

- ``config.toml``: the resolved config (rerunning it reproduces the run);
- ``provenance.json``: versions, platform, seed, git commit;
- ``metrics.jsonl``: one line per epoch for the photonic network, written as each finishes;
- ``steps.jsonl``: loss and gradient error of every training step;
- ``baseline.jsonl``: one line per epoch for the digital baseline;
- ``checkpoint.npz``: programmed phases after the last finished epoch;
- ``step_report.json``: the simulated schedule of one training step;
- ``summary.json`` and the plots ``training.png``, ``gradient_error.png``, ``timeline.png``,
  ``energy.png``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from experiments.baseline import BaselineConfig, train_digital_baseline
from experiments.config import ExperimentConfig
from experiments.datasets import Dataset, load_dataset, standardize
from experiments.provenance import collect_provenance
from photonic.encoding import AmplitudeEncoder
from photonic.hardware import Chip
from photonic.insitu import InSituStep, run_pass
from photonic.losses import PowerCrossEntropy
from photonic.mesh import MeshLayout
from photonic.network import PhotonicNetwork, activation_by_name
from photonic.optim import make_optimizer
from photonic.reference import exact_gradient, gradient_error, programmed_gradients
from simulator.step import StepReport, simulate_training_step

logger = logging.getLogger(__name__)


def resolve_config(config: ExperimentConfig, dataset: Dataset) -> ExperimentConfig:
    """Fill the settings derived from the dataset: mesh size, output groups, baseline widths.

    Raises:
        ValueError: if the mesh is too small for the features or the groups do not fit.
    """
    network = config.network
    n_features, n_classes = dataset.n_features, dataset.n_classes
    n_modes = network.n_modes
    if n_modes is None:
        n_modes = n_features + 1
        while n_modes % n_classes:
            n_modes += 1
    if n_modes <= n_features:
        raise ValueError(
            f"network.n_modes = {n_modes} is too small for {n_features} features of dataset "
            f"{dataset.name!r}; it needs at least {n_features + 1} (one bias port)"
        )
    groups = network.output_groups
    if groups is None:
        if n_modes < n_classes:
            raise ValueError(
                f"network.n_modes = {n_modes} is smaller than the {n_classes} classes"
            )
        size = n_modes // n_classes
        groups = tuple(tuple(range(c * size, (c + 1) * size)) for c in range(n_classes))
    if len(groups) != n_classes:
        raise ValueError(
            f"network.output_groups has {len(groups)} groups; dataset {dataset.name!r} has {n_classes} classes"
        )
    try:
        PowerCrossEntropy(n_modes, groups, network.logit_scale)
    except ValueError as error:
        raise ValueError(f"network.output_groups: {error}") from None
    used = {port for group in groups for port in group}
    if len(used) < n_modes:
        # Groups given in the config leave ports out on purpose, so only groups derived
        # from the mesh size and the class count get a warning.
        level = logging.INFO if network.output_groups is not None else logging.WARNING
        logger.log(
            level,
            "output ports %s belong to no group and do not reach the loss",
            sorted(set(range(n_modes)) - used),
        )
    hidden = config.baseline.hidden_sizes
    if hidden is None:
        hidden = (n_modes,) * (network.n_layers - 1)
    return replace(
        config,
        network=replace(network, n_modes=n_modes, output_groups=groups),
        baseline=replace(config.baseline, hidden_sizes=hidden),
    )


def build_network(
    config: ExperimentConfig, seed: np.random.SeedSequence
) -> PhotonicNetwork:
    """Build the photonic network of a resolved config, one chip per layer seeded from ``seed``."""
    net = config.network
    layout = MeshLayout.create(net.n_modes, net.topology)
    chips = [
        Chip(layout, config.hardware, chip_seed, initialization=net.initialization)
        for chip_seed in seed.spawn(net.n_layers)
    ]
    loss = PowerCrossEntropy(net.n_modes, net.output_groups, net.logit_scale)
    return PhotonicNetwork(chips, activation_by_name(net.activation), loss)


def evaluate(
    network: PhotonicNetwork, x: np.ndarray, labels: np.ndarray
) -> tuple[float, float]:
    """Loss and accuracy of the network on the chip (one noisy pass per layer)."""
    outputs = network.infer(x, noisy=True)
    loss, _ = network.loss.value_and_adjoint(outputs, labels)
    accuracy = float(np.mean(network.loss.predict(outputs) == labels))
    return loss, accuracy


@dataclass
class RunResult:
    """Outputs of a finished run."""

    folder: Path
    summary: dict[str, Any]
    photonic: list[dict[str, Any]]
    digital: list[dict[str, Any]]


class _JsonLines:
    """Append-only JSON-lines file, flushed after every record so no finished work is lost."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _write_json(path: Path, value: Any) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _save_checkpoint(path: Path, epoch: int, phases: list[np.ndarray]) -> None:
    temporary = path.with_name(path.stem + ".tmp.npz")
    np.savez(
        temporary, epoch=epoch, **{f"layer{index}": p for index, p in enumerate(phases)}
    )
    os.replace(temporary, path)


def make_results_folder(root: Path, name: str, seed: int) -> Path:
    """Create a new folder ``root/<name>-seed<seed>-<timestamp>`` (suffixed if it exists)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = root / f"{name}-seed{seed}-{stamp}"
    folder, counter = base, 1
    while folder.exists():
        folder = base.with_name(f"{base.name}-{counter}")
        counter += 1
    folder.mkdir(parents=True)
    return folder


class Trainer:
    """In situ training of a photonic network, each step scheduled by the SimPy model."""

    def __init__(
        self,
        config: ExperimentConfig,
        network: PhotonicNetwork,
        shuffle_seed: np.random.SeedSequence,
    ) -> None:
        self.config = config
        self.network = network
        self.optimizer = make_optimizer(
            config.training.optimizer, config.training.learning_rate
        )
        self.rng = np.random.default_rng(shuffle_seed)
        self.masks = network.trainable_masks()
        self.step_count = 0
        self.simulated_time_s = 0.0
        self.energy_j = 0.0
        self.example_report: StepReport | None = None
        self._schedules: dict[int, tuple[StepReport, list[tuple[str, int, int]]]] = {}

    def train_step(self, x: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        """Measure one gradient on the chip at the times the schedule gives, then update."""
        step = InSituStep(
            self.network, x, labels, self.config.training.optical_loss_correction
        )
        start_s = self.simulated_time_s
        cached = self._schedules.get(len(x))
        if cached is None:
            # The schedule of a step depends only on the timing config and the batch size,
            # so it is simulated once per batch size and its pass times are replayed after.
            pass_times: list[tuple[str, int, int]] = []

            def on_pass(kind: str, layer: int, time_ps: int) -> None:
                pass_times.append((kind, layer, time_ps))
                run_pass(step, kind, layer, start_s + time_ps * 1e-12)

            report = simulate_training_step(
                self.config.timing,
                n_layers=self.network.n_layers,
                n_modes=self.network.n_modes,
                batch_size=len(x),
                phases_per_layer=self.network.chips[0].n_phases,
                on_pass=on_pass,
            )
            self._schedules[len(x)] = (report, pass_times)
        else:
            report, pass_times = cached
            for kind, layer, time_ps in pass_times:
                run_pass(step, kind, layer, start_s + time_ps * 1e-12)
        measured = step.result()
        if self.example_report is None:
            self.example_report = report
        self.simulated_time_s += report.step_time_s
        self.energy_j += report.energy_j

        record: dict[str, Any] = {"step": self.step_count, "loss": measured.loss}
        if self.step_count % self.config.training.reference_every == 0:
            exact = exact_gradient(
                self.network.devices(),
                self.network.activation,
                self.network.loss,
                x,
                labels,
            )
            # The optimizer updates the programmed phases, so the measured gradient is
            # compared with the exact gradient with respect to them: heater gain spread and
            # crosstalk make the two differ even where the measurement itself is exact.
            exact_programmed = programmed_gradients(self.network.chips, exact.gradients)
            cosine, relative = gradient_error(
                self._trainable(measured.gradients), self._trainable(exact_programmed)
            )
            record.update(cosine_distance=cosine, relative_error=relative)
        gradients = [g * mask for g, mask in zip(measured.gradients, self.masks)]
        phases = self.network.get_phases()
        self.optimizer.step(phases, gradients)
        # Each layer's new phases start settling when the schedule starts its settle
        # interval, so the next step's passes see whatever lag remains.
        settle_starts = {
            interval.layer: interval.start_ps
            for interval in report.intervals
            if interval.activity == "settle"
        }
        for layer, (chip, value) in enumerate(zip(self.network.chips, phases)):
            settle_ps = settle_starts.get(layer)
            time_s = None if settle_ps is None else start_s + settle_ps * 1e-12
            chip.program(value, time_s)
        self.step_count += 1
        return record

    def _trainable(self, gradients: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([g[mask] for g, mask in zip(gradients, self.masks)])

    def train_epoch(self, x: np.ndarray, labels: np.ndarray) -> list[dict[str, Any]]:
        """Train one pass over the training set in shuffled mini-batches."""
        order = self.rng.permutation(len(x))
        batch = self.config.training.batch_size
        return [
            self.train_step(x[order[i : i + batch]], labels[order[i : i + batch]])
            for i in range(0, len(x), batch)
        ]


def _median(values: list[float]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(finite)) if finite else None


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by the user; the finished work is in ``folder``."""

    def __init__(self, folder: Path) -> None:
        super().__init__(str(folder))
        self.folder = folder


def prepare(config: ExperimentConfig) -> tuple[ExperimentConfig, Dataset]:
    """Load the dataset and resolve and check the config against it, writing nothing.

    Raises:
        ValueError: for a config that does not fit the dataset.
    """
    dataset = load_dataset(
        config.data.name,
        n_samples=config.data.n_samples,
        noise=config.data.noise,
        test_fraction=config.data.test_fraction,
        seed=config.seed,
    )
    return resolve_config(config, dataset), dataset


def run_training(
    config: ExperimentConfig,
    results_root: str | Path = "results",
    config_path: str | None = None,
    progress: bool = True,
) -> RunResult:
    """Run the training experiment and write its results folder.

    Raises:
        ValueError: for a config that does not fit the dataset (before anything is
            written).
        OSError: if the results folder cannot be created.
        RunInterrupted: on Ctrl-C, after the finished epochs and a summary with status
            "interrupted" are written.
    """
    started = time.perf_counter()
    config, dataset = prepare(config)
    folder = make_results_folder(Path(results_root), config.name, config.seed)
    logger.info(
        "run %s: seed %d, config %s, results in %s",
        config.name,
        config.seed,
        config_path or "default",
        folder,
    )
    (folder / "config.toml").write_text(config.to_toml(), encoding="utf-8")
    _write_json(
        folder / "provenance.json", collect_provenance(config.seed, config_path)
    )

    chip_seed, shuffle_seed = np.random.SeedSequence(config.seed).spawn(2)
    network = build_network(config, chip_seed)
    encoder = AmplitudeEncoder(
        config.network.n_modes, config.network.input_power, config.network.input_fill
    )
    encoder.fit(dataset.x_train)
    x_train, x_test = (
        encoder.transform(dataset.x_train),
        encoder.transform(dataset.x_test),
    )
    y_train, y_test = dataset.y_train, dataset.y_test
    trainer = Trainer(config, network, shuffle_seed)

    metrics_file = _JsonLines(folder / "metrics.jsonl")
    steps_file = _JsonLines(folder / "steps.jsonl")
    photonic: list[dict[str, Any]] = []
    stage = "in situ training"
    try:
        photonic.append(
            _epoch_record(
                0, [], trainer, network, started, x_train, y_train, x_test, y_test
            )
        )
        metrics_file.write(photonic[-1])
        bar = tqdm(
            range(1, config.training.epochs + 1),
            desc="in situ training",
            unit="epoch",
            disable=not progress,
        )
        for epoch in bar:
            step_records = trainer.train_epoch(x_train, y_train)
            for record in step_records:
                steps_file.write({"epoch": epoch, **record})
            record = _epoch_record(
                epoch,
                step_records,
                trainer,
                network,
                started,
                x_train,
                y_train,
                x_test,
                y_test,
            )
            photonic.append(record)
            metrics_file.write(record)
            _save_checkpoint(folder / "checkpoint.npz", epoch, network.get_phases())
            bar.set_postfix(
                loss=f"{record['train_loss']:.3f}",
                test_acc=f"{record['test_accuracy']:.3f}",
            )
        logger.info("in situ training finished after %d steps", trainer.step_count)

        stage = "digital baseline"
        digital = _train_baseline(config, dataset, folder)
        stage = "summary and plots"
        summary = _summarize(
            config,
            dataset,
            trainer,
            photonic,
            digital,
            folder,
            time.perf_counter() - started,
        )
        _write_plots(folder, photonic, digital, trainer)
        _write_json(folder / "summary.json", summary)
    except KeyboardInterrupt:
        completed = max(len(photonic) - 1, 0)
        logger.warning(
            "run interrupted during %s; %d finished epochs are in %s",
            stage,
            completed,
            folder,
        )
        _write_json(
            folder / "summary.json",
            {
                "status": "interrupted",
                "stage": stage,
                "completed_epochs": completed,
                "results_folder": str(folder),
            },
        )
        raise RunInterrupted(folder) from None
    finally:
        metrics_file.close()
        steps_file.close()
    logger.info("results written to %s", folder)
    return RunResult(folder=folder, summary=summary, photonic=photonic, digital=digital)


def _epoch_record(
    epoch: int,
    step_records: list[dict[str, Any]],
    trainer: Trainer,
    network: PhotonicNetwork,
    started: float,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
) -> dict[str, Any]:
    train_loss, train_accuracy = evaluate(network, x_train, y_train)
    test_loss, test_accuracy = evaluate(network, x_test, y_test)
    return {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_accuracy": train_accuracy,
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "measured_loss": _median([r["loss"] for r in step_records]),
        "cosine_distance_median": _median(
            [r.get("cosine_distance") for r in step_records]
        ),
        "relative_error_median": _median(
            [r.get("relative_error") for r in step_records]
        ),
        "steps": trainer.step_count,
        "simulated_time_s": trainer.simulated_time_s,
        "energy_j": trainer.energy_j,
        "wall_time_s": time.perf_counter() - started,
    }


def _train_baseline(
    config: ExperimentConfig, dataset: Dataset, folder: Path
) -> list[dict[str, Any]]:
    settings = config.baseline
    baseline_config = BaselineConfig(
        hidden_sizes=settings.hidden_sizes,
        activation=settings.activation,
        optimizer=settings.optimizer,
        learning_rate=settings.learning_rate,
        epochs=config.training.epochs,
        batch_size=config.training.batch_size,
        seed=config.seed,
    )
    train_x, test_x = standardize(dataset.x_train, dataset.x_test)
    baseline_file = _JsonLines(folder / "baseline.jsonl")
    try:
        return train_digital_baseline(
            train_x,
            dataset.y_train,
            test_x,
            dataset.y_test,
            dataset.n_classes,
            baseline_config,
            on_epoch=baseline_file.write,
        )
    finally:
        baseline_file.close()


def _summarize(
    config: ExperimentConfig,
    dataset: Dataset,
    trainer: Trainer,
    photonic: list[dict[str, Any]],
    digital: list[dict[str, Any]],
    folder: Path,
    wall_time_s: float,
) -> dict[str, Any]:
    report = trainer.example_report
    steps_path = folder / "steps.jsonl"
    steps = [
        json.loads(line) for line in steps_path.read_text(encoding="utf-8").splitlines()
    ]
    return {
        "status": "finished",
        "name": config.name,
        "seed": config.seed,
        "dataset": dataset.name,
        "n_train": len(dataset.y_train),
        "n_test": len(dataset.y_test),
        "photonic": {
            "test_accuracy": photonic[-1]["test_accuracy"],
            "train_accuracy": photonic[-1]["train_accuracy"],
            "test_loss": photonic[-1]["test_loss"],
            "n_phases": trainer.network.n_phases,
            "n_trained_phases": int(sum(mask.sum() for mask in trainer.masks)),
        },
        "digital": {
            "test_accuracy": digital[-1]["test_accuracy"],
            "train_accuracy": digital[-1]["train_accuracy"],
            "test_loss": digital[-1]["test_loss"],
        },
        "gradient_error": {
            "cosine_distance_median": _median(
                [s.get("cosine_distance") for s in steps]
            ),
            "relative_error_median": _median([s.get("relative_error") for s in steps]),
        },
        "hardware_step": {
            "batch_size": config.training.batch_size,
            "step_time_s": report.step_time_s,
            "energy_j": report.energy_j,
            "optical_passes": report.optical_passes,
            "energy_by_component_j": report.energy_by_component,
            "utilisation": report.utilisation,
        },
        "simulated_training_time_s": trainer.simulated_time_s,
        "simulated_training_energy_j": trainer.energy_j,
        "steps": trainer.step_count,
        "wall_time_s": wall_time_s,
        "results_folder": str(folder),
    }


def _write_plots(
    folder: Path, photonic: list[dict], digital: list[dict], trainer: Trainer
) -> None:
    from experiments.plots import plot_gradient_error, plot_training_curves
    from simulator.plot import plot_energy_breakdown, plot_timeline

    plot_training_curves(photonic, digital, folder / "training.png")
    steps = [
        json.loads(line)
        for line in (folder / "steps.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    measured = [
        s
        for s in steps
        if "cosine_distance" in s and math.isfinite(s["cosine_distance"])
    ]
    if measured:
        plot_gradient_error(
            [s["step"] for s in measured],
            [s["cosine_distance"] for s in measured],
            [s["relative_error"] for s in measured],
            folder / "gradient_error.png",
        )
    report = trainer.example_report
    _write_json(folder / "step_report.json", report.to_dict())
    plot_timeline(report, folder / "timeline.png")
    plot_energy_breakdown(report, folder / "energy.png")


def format_summary(summary: dict[str, Any]) -> str:
    """Format the headline results as a short plain-text table."""
    photonic, digital = summary["photonic"], summary["digital"]
    step = summary["hardware_step"]
    gradient = summary["gradient_error"]
    cosine = gradient["cosine_distance_median"]
    relative = gradient["relative_error_median"]
    lines = [
        f"{'':34}{'photonic (in situ)':>20}{'digital baseline':>18}",
        f"{'test accuracy':34}{photonic['test_accuracy']:>20.3f}{digital['test_accuracy']:>18.3f}",
        f"{'train accuracy':34}{photonic['train_accuracy']:>20.3f}{digital['train_accuracy']:>18.3f}",
        f"{'test loss (nats)':34}{photonic['test_loss']:>20.4f}{digital['test_loss']:>18.4f}",
        "",
        f"{'median gradient error 1 - cos':34}{_format_optional(cosine):>20}",
        f"{'median relative L2 gradient error':34}{_format_optional(relative):>20}",
        f"{'simulated time per step':34}{step['step_time_s'] * 1e6:>17.2f} us   (batch {step['batch_size']})",
        f"{'simulated energy per step':34}{step['energy_j'] * 1e6:>17.3f} uJ",
        f"{'optical passes per step':34}{step['optical_passes']:>20d}",
        f"{'results':34}{summary['results_folder']}",
    ]
    return "\n".join(lines)


def _format_optional(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
