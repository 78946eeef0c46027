"""The schedule experiment: time, energy and gradient error of every method on every
architecture, for a hardware architect.

One run simulates ``n_steps`` training steps of each gradient method on each architecture
with the configured system, computes the gradient error of each method with the physics
model, sweeps the batch size, and writes a results folder:

- ``config.toml``: the resolved config;
- ``provenance.json``: versions, platform, seed, git commit;
- ``summary.json``: per architecture and method the passes per gradient, time and energy
  per step, throughput, energy per sample, utilisation, bottleneck, latency breakdown,
  gradient error and the trace digest, and the ratios of finite differences to in situ
  backpropagation;
- ``energy.csv``: energy per step by component and phase, one row per pair;
- ``latency.csv``: critical-path time per step by activity;
- ``batch_sweep.csv``: throughput and energy per sample against batch size;
- ``timeline-<architecture>-<method>.png``, ``energy-<architecture>-<method>.png`` and
  ``batch_sweep.png``.

The config is TOML; every key is optional and an unknown key is an error:

```toml
name = "schedule"
seed = 0
architectures = ["time-multiplexed", "pipelined"]
methods = ["in-situ", "in-situ-4", "finite-difference", "hybrid"]
n_modes = 64
n_layers = 2
batch_size = 32
n_steps = 2
batch_sweep = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576]
sweep_methods = ["in-situ", "in-situ-4", "hybrid"]

[settings]            # simulator.architecture.ScheduleSettings
settle_tolerance_rad = 0.01

[system]              # a preset of simulator.components and overrides per component
preset = "thermo-optic-chip"
[system.phase_shifters]
dac_channels = 128

[physics]             # gradient error from the photonic model
enabled = true
hardware = "thermo-optic-si"
batch_size = 8
fd_parameters = 256
```
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from experiments.provenance import collect_provenance
from experiments.train import make_results_folder
from photonic.hardware import HARDWARE_PRESETS, hardware_preset
from simulator.analysis import (
    bottleneck,
    energy_by_phase,
    latency_breakdown,
    utilisation,
    write_energy_csv,
)
from simulator.architecture import ARCHITECTURES, ScheduleSettings
from simulator.components import SystemConfig
from simulator.fidelity import (
    GradientError,
    build_problem,
    finite_difference_gradient_error,
    hybrid_gradient_error,
    in_situ_gradient_error,
)
from simulator.methods import METHODS, ScheduleShape
from simulator.plot import plot_batch_sweep, plot_energy_by_phase, plot_trace_timeline
from simulator.scheduling import ScheduleResult, simulate_schedule, sweep_batch_sizes

logger = logging.getLogger(__name__)

PS_PER_S = 10**12


def _require(condition: bool, key: str, value: Any, allowed: str) -> None:
    if not condition:
        raise ValueError(f"{key} = {value!r} is invalid; allowed: {allowed}")


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_choices(key: str, values: Any, choices: Sequence[str]) -> tuple[str, ...]:
    _require(
        isinstance(values, (list, tuple))
        and len(values) > 0
        and all(value in choices for value in values)
        and len(set(values)) == len(values),
        key,
        values,
        "a non-empty list without repeats of " + ", ".join(choices),
    )
    return tuple(values)


@dataclass(frozen=True)
class PhysicsSettings:
    """Gradient-error computation with the physics model of ``photonic``.

    Attributes:
        enabled: compute gradient errors at all.
        hardware: name of a preset of ``photonic.hardware.HARDWARE_PRESETS``.
        batch_size: samples of the physics batch (smaller than the scheduled batch
            keeps the run short; the errors are per batch).
        fd_parameters: trainable phases measured by finite differences, drawn at
            random; 0 measures all of them (2 noisy evaluations each).
        loss_correction: rescale the in situ gradient by the nominal loss to each
            shifter (``photonic.insitu.InSituStep``).
    """

    enabled: bool = True
    hardware: str = "thermo-optic-si"
    batch_size: int = 8
    fd_parameters: int = 256
    loss_correction: bool = False

    def __post_init__(self) -> None:
        _require(
            isinstance(self.enabled, bool),
            "physics.enabled",
            self.enabled,
            "true or false",
        )
        _require(
            self.hardware in HARDWARE_PRESETS,
            "physics.hardware",
            self.hardware,
            ", ".join(HARDWARE_PRESETS),
        )
        _require(
            _is_positive_int(self.batch_size),
            "physics.batch_size",
            self.batch_size,
            "a positive integer",
        )
        _require(
            isinstance(self.fd_parameters, int)
            and not isinstance(self.fd_parameters, bool)
            and self.fd_parameters >= 0,
            "physics.fd_parameters",
            self.fd_parameters,
            "an integer >= 0 (0 measures every phase)",
        )
        _require(
            isinstance(self.loss_correction, bool),
            "physics.loss_correction",
            self.loss_correction,
            "true or false",
        )


@dataclass(frozen=True)
class ScheduleConfig:
    """Everything one schedule run needs; see the module docstring for the TOML form."""

    name: str = "schedule"
    seed: int = 0
    architectures: tuple[str, ...] = ARCHITECTURES
    methods: tuple[str, ...] = METHODS
    n_modes: int = 64
    n_layers: int = 2
    batch_size: int = 32
    n_steps: int = 2
    batch_sweep: tuple[int, ...] = tuple(4**k for k in range(11))
    sweep_methods: tuple[str, ...] = ("in-situ", "in-situ-4", "hybrid")
    settings: ScheduleSettings = field(default_factory=ScheduleSettings)
    system: SystemConfig = field(default_factory=SystemConfig)
    physics: PhysicsSettings = field(default_factory=PhysicsSettings)

    def __post_init__(self) -> None:
        _require(
            isinstance(self.name, str) and self.name != "" and "/" not in self.name,
            "name",
            self.name,
            "a non-empty string without '/'",
        )
        _require(
            isinstance(self.seed, int)
            and not isinstance(self.seed, bool)
            and 0 <= self.seed < 2**32,
            "seed",
            self.seed,
            "an integer in [0, 2**32)",
        )
        object.__setattr__(
            self,
            "architectures",
            _check_choices("architectures", self.architectures, ARCHITECTURES),
        )
        object.__setattr__(
            self, "methods", _check_choices("methods", self.methods, METHODS)
        )
        object.__setattr__(
            self,
            "sweep_methods",
            _check_choices("sweep_methods", self.sweep_methods, METHODS)
            if self.sweep_methods
            else (),
        )
        for key in ("n_layers", "batch_size", "n_steps"):
            value = getattr(self, key)
            _require(_is_positive_int(value), key, value, "a positive integer")
        _require(
            _is_positive_int(self.n_modes) and self.n_modes >= 2,
            "n_modes",
            self.n_modes,
            "an integer >= 2",
        )
        _require(
            isinstance(self.batch_sweep, (list, tuple))
            and all(_is_positive_int(batch) for batch in self.batch_sweep),
            "batch_sweep",
            self.batch_sweep,
            "a list of positive integers (empty for no sweep)",
        )
        object.__setattr__(self, "batch_sweep", tuple(sorted(set(self.batch_sweep))))

    @property
    def shape(self) -> ScheduleShape:
        """Network and batch size of the scheduled steps."""
        return ScheduleShape(self.n_modes, self.n_layers, self.batch_size)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ScheduleConfig:
        """Build a config from parsed TOML.

        Raises:
            ValueError: for an unknown key or table, or any invalid value; the message
                names the key and what is allowed.
        """
        simple = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in ("settings", "system", "physics")
        ]
        allowed = [*simple, "settings", "system", "physics"]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ValueError(
                f"unknown schedule config key {unknown[0]!r}; allowed keys: "
                + ", ".join(allowed)
            )
        kwargs: dict[str, Any] = {key: values[key] for key in simple if key in values}
        if "settings" in values:
            kwargs["settings"] = _build_table(
                "settings", ScheduleSettings, values["settings"]
            )
        if "physics" in values:
            kwargs["physics"] = _build_table(
                "physics", PhysicsSettings, values["physics"]
            )
        if "system" in values:
            table = values["system"]
            if not isinstance(table, Mapping):
                raise ValueError(f"[system] must be a table, got {table!r}")
            kwargs["system"] = SystemConfig.from_mapping(table)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as nested plain values that ``from_mapping`` reads back."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            values[f.name] = value
        values["settings"] = dataclasses.asdict(self.settings)
        values["physics"] = dataclasses.asdict(self.physics)
        system = self.system.to_dict()
        values["system"] = {"preset": "thermo-optic-chip", **system}
        return values

    def to_toml(self) -> str:
        """Return the config as TOML text."""
        return tomli_w.dumps(self.to_dict())


def _build_table(name: str, cls: type, values: Any) -> Any:
    if not isinstance(values, Mapping):
        raise ValueError(f"[{name}] must be a table, got {values!r}")
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in [{name}]; allowed keys: "
            + ", ".join(allowed)
        )
    return cls(**values)


def load_schedule_config(path: str | Path | None) -> ScheduleConfig:
    """Read a schedule config from a TOML file; with no path, return the defaults.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file is not valid TOML or a key or value is invalid.
    """
    if path is None:
        return ScheduleConfig()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"schedule config file {str(path)!r} not found")
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path} is not valid TOML: {error}") from None
    return ScheduleConfig.from_mapping(values)


@dataclass
class ScheduleRun:
    """Outputs of a finished schedule run."""

    folder: Path
    summary: dict[str, Any]


def _label(architecture: str, method: str) -> str:
    return f"{architecture}/{method}"


def _gradient_errors(config: ScheduleConfig) -> dict[str, GradientError | None]:
    """Gradient error of every configured method on every architecture, by label.

    The in situ passes run at the times the schedule of each architecture gives them.
    Finite differences and the hybrid method run with the drift frozen, so their error
    is the same on both architectures and is computed once.
    """
    physics = config.physics
    hardware = hardware_preset(physics.hardware)

    def problem():
        return build_problem(
            config.n_modes, config.n_layers, physics.batch_size, hardware, config.seed
        )

    shared: dict[str, GradientError | None] = {}
    if "finite-difference" in config.methods:
        shared["finite-difference"] = finite_difference_gradient_error(
            problem(),
            config.settings.fd_step_rad,
            physics.fd_parameters or None,
            config.seed,
        )
    if "hybrid" in config.methods:
        shared["hybrid"] = hybrid_gradient_error(problem())

    errors: dict[str, GradientError | None] = {}
    for architecture in config.architectures:
        for method in config.methods:
            label = _label(architecture, method)
            if method in ("in-situ", "in-situ-4"):
                times = _in_situ_pass_times(config, architecture, method)
                errors[label] = in_situ_gradient_error(
                    problem(),
                    times,
                    physics.loss_correction,
                    analog_subtraction=method == "in-situ-4",
                )
            else:
                errors[label] = shared.get(method)
    return errors


def _in_situ_pass_times(
    config: ScheduleConfig, architecture: str, method: str = "in-situ"
) -> list[tuple[str, int, float]]:
    """Return (kind, layer, time in s) of every pass of one scheduled in situ step."""
    times: list[tuple[str, int, float]] = []

    def record(kind: str, layer: int, time_ps: int) -> None:
        times.append((kind, layer, time_ps / PS_PER_S))

    simulate_schedule(
        config.system,
        architecture,
        method,
        config.shape,
        config.settings,
        on_pass=record,
    )
    return times


def _result_summary(
    result: ScheduleResult, error: GradientError | None
) -> dict[str, Any]:
    trace = result.trace
    name, load = bottleneck(trace)
    summary = result.summary()
    summary["bottleneck"] = {"resource": name, "utilisation": load}
    summary["utilisation"] = utilisation(trace)
    summary["latency_breakdown_s"] = {
        activity: time_ps / result.n_steps / PS_PER_S
        for activity, time_ps in latency_breakdown(trace).items()
    }
    summary["gradient_error"] = (
        None
        if error is None
        else {
            "cosine_distance": error.cosine_distance,
            "relative_error": error.relative_error,
            "n_compared": error.n_compared,
        }
    )
    return summary


def _ratios(
    results: Mapping[str, ScheduleResult], architecture: str
) -> dict[str, float] | None:
    in_situ = results.get(_label(architecture, "in-situ"))
    finite = results.get(_label(architecture, "finite-difference"))
    if in_situ is None or finite is None:
        return None
    return {
        "optical_passes": finite.counts.optical_passes / in_situ.counts.optical_passes,
        "step_time": finite.step_time_s / in_situ.step_time_s,
        "energy_per_step": finite.energy_per_step_j / in_situ.energy_per_step_j,
    }


def run_schedule(
    config: ScheduleConfig,
    results_root: str | Path = "results",
    config_path: str | None = None,
) -> ScheduleRun:
    """Run the schedule experiment and write its results folder.

    Raises:
        OSError: if the results folder cannot be written.
    """
    folder = make_results_folder(Path(results_root), config.name, config.seed)
    logger.info(
        "schedule run %s: system %s, config %s, results in %s",
        config.name,
        config.system.name,
        config_path or "default",
        folder,
    )
    (folder / "config.toml").write_text(config.to_toml(), encoding="utf-8")
    _write_json(
        folder / "provenance.json", collect_provenance(config.seed, config_path)
    )

    results: dict[str, ScheduleResult] = {}
    summaries: dict[str, Any] = {}
    energy_tables = {}
    errors: dict[str, GradientError | None] = {}
    if config.physics.enabled:
        logger.info(
            "computing gradient errors with hardware %s", config.physics.hardware
        )
        errors = _gradient_errors(config)
    for architecture in config.architectures:
        for method in config.methods:
            label = _label(architecture, method)
            logger.info("simulating %s", label)
            result = simulate_schedule(
                config.system,
                architecture,
                method,
                config.shape,
                config.settings,
                config.n_steps,
            )
            results[label] = result
            summaries[label] = _result_summary(result, errors.get(label))
            energy_tables[label] = energy_by_phase(result.trace)
            plot_trace_timeline(
                result.trace,
                folder / f"timeline-{architecture}-{method}.png",
                f"{method} on {architecture}, {config.n_steps} steps",
            )
            per_step = {
                key: value / config.n_steps
                for key, value in energy_tables[label].items()
            }
            plot_energy_by_phase(
                per_step,
                folder / f"energy-{architecture}-{method}.png",
                f"{method} on {architecture}, per step",
            )

    write_energy_csv(
        energy_tables,
        folder / "energy.csv",
        {label: result.n_steps for label, result in results.items()},
    )
    _write_latency_csv(folder / "latency.csv", summaries)
    sweep = _run_sweep(config, folder)

    summary = {
        "name": config.name,
        "seed": config.seed,
        "system": config.system.name,
        "n_modes": config.n_modes,
        "n_layers": config.n_layers,
        "batch_size": config.batch_size,
        "results": summaries,
        "finite_difference_over_in_situ": {
            architecture: _ratios(results, architecture)
            for architecture in config.architectures
        },
        "batch_sweep": sweep,
        "results_folder": str(folder),
    }
    _write_json(folder / "summary.json", summary)
    logger.info("results written to %s", folder)
    return ScheduleRun(folder, summary)


def _run_sweep(config: ScheduleConfig, folder: Path) -> dict[str, list[dict[str, Any]]]:
    curves: dict[str, list[tuple[int, float, float]]] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    if not config.batch_sweep or not config.sweep_methods:
        return rows
    for architecture in config.architectures:
        for method in config.sweep_methods:
            label = _label(architecture, method)
            logger.info("sweeping the batch size for %s", label)
            results = sweep_batch_sizes(
                config.system,
                architecture,
                method,
                config.n_modes,
                config.n_layers,
                config.batch_sweep,
                config.settings,
            )
            curves[label] = [
                (r.shape.batch_size, r.throughput_samples_per_s, r.energy_per_sample_j)
                for r in results
            ]
            rows[label] = [
                {
                    "batch_size": r.shape.batch_size,
                    "step_time_s": r.step_time_s,
                    "throughput_samples_per_s": r.throughput_samples_per_s,
                    "energy_per_sample_j": r.energy_per_sample_j,
                }
                for r in results
            ]
    plot_batch_sweep(curves, folder / "batch_sweep.png")
    with (folder / "batch_sweep.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "label",
                "batch_size",
                "step_time_s",
                "throughput_samples_per_s",
                "energy_per_sample_j",
            ]
        )
        for label, points in rows.items():
            for point in points:
                writer.writerow([label, *(repr(value) for value in point.values())])
    return rows


def _write_latency_csv(path: Path, summaries: Mapping[str, Any]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "activity", "critical_path_time_per_step_s"])
        for label, summary in summaries.items():
            for activity, time_s in summary["latency_breakdown_s"].items():
                writer.writerow([label, activity, repr(time_s)])


def _write_json(path: Path, value: Any) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _format_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _format_optional(value: float | None, spec: str) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return format(value, spec)


def format_schedule_summary(
    summary: Mapping[str, Any], breakdown_items: int = 4
) -> str:
    """Format the headline figures, latency breakdowns and ratios as plain text."""
    header = (
        f"{'architecture/method':36}{'passes':>8}{'bursts':>8}{'step time':>11}"
        f"{'J/step':>11}{'samples/s':>11}{'J/sample':>11}{'1-cos':>8}  bottleneck"
    )
    title = (
        f"system {summary['system']}, N = {summary['n_modes']}, "
        f"L = {summary['n_layers']}, batch {summary['batch_size']}"
    )
    lines = [title, "", header]
    for label, result in summary["results"].items():
        error = result["gradient_error"]
        cosine = None if error is None else error["cosine_distance"]
        neck = result["bottleneck"]
        lines.append(
            f"{label:36}{result['optical_passes_per_gradient']:>8d}"
            f"{result['mesh_passes_per_step']:>8d}"
            f"{_format_time(result['step_time_s']):>11}"
            f"{result['energy_per_step_j']:>11.3g}"
            f"{result['throughput_samples_per_s']:>11.3g}"
            f"{result['energy_per_sample_j']:>11.3g}"
            f"{_format_optional(cosine, '.3f'):>8}"
            f"  {neck['resource']} ({neck['utilisation']:.0%})"
        )
    lines += ["", "critical path per step (largest items):"]
    for label, result in summary["results"].items():
        items = list(result["latency_breakdown_s"].items())[:breakdown_items]
        text = ", ".join(f"{name} {_format_time(time_s)}" for name, time_s in items)
        lines.append(f"  {label}: {text}")
    ratios = summary["finite_difference_over_in_situ"]
    for architecture, ratio in ratios.items():
        if ratio is None:
            continue
        lines.append(
            f"finite differences / in situ on {architecture}: "
            f"{ratio['optical_passes']:.0f}x passes, {ratio['step_time']:.3g}x time, "
            f"{ratio['energy_per_step']:.3g}x energy per step"
        )
    lines.append(f"results: {summary['results_folder']}")
    return "\n".join(lines)
