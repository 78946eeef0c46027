"""Configuration of a training experiment, read from TOML.

An experiment config has top-level keys ``name`` and ``seed`` and the tables ``[data]``,
``[network]``, ``[training]``, ``[baseline]``, ``[hardware]`` (with a ``preset`` and the
sub-tables ``static``, ``programming``, ``drift``, ``passes``, ``forward``, ``adjoint`` and
``interference``) and ``[timing]`` (with a ``preset`` and any timing field). Every key is
optional; an unknown key is an error. A ``[hardware]`` table without ``preset`` starts
from the default experiment's preset, ``DEFAULT_HARDWARE_PRESET``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

from experiments.datasets import DATASET_NAMES
from photonic.hardware import HardwareConfig
from photonic.initialization import INITIALIZATIONS
from photonic.mesh import TOPOLOGIES
from photonic.network import ACTIVATIONS
from photonic.optim import OPTIMIZERS
from simulator.timing import TimingConfig


DEFAULT_HARDWARE_PRESET = "bench"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require(
    condition: bool, section: str, name: str, value: Any, allowed: str
) -> None:
    if not condition:
        raise ValueError(f"{section}.{name} = {value!r} is invalid; allowed: {allowed}")


def _positive_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


@dataclass(frozen=True)
class DataConfig:
    """Dataset and split.

    Attributes:
        name: one of iris, moons, circles, ring, digits (all bundled with scikit-learn).
        n_samples: samples generated for moons, circles and ring.
        noise: noise of the moons and circles generators.
        test_fraction: fraction of samples held out for testing (stratified).
    """

    name: str = "moons"
    n_samples: int = 500
    noise: float = 0.2
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        _require(
            self.name in DATASET_NAMES,
            "data",
            "name",
            self.name,
            ", ".join(DATASET_NAMES),
        )
        _require(
            _is_int(self.n_samples) and self.n_samples >= 10,
            "data",
            "n_samples",
            self.n_samples,
            "an integer >= 10",
        )
        _require(
            _is_number(self.noise) and math.isfinite(self.noise) and self.noise >= 0,
            "data",
            "noise",
            self.noise,
            "a number >= 0",
        )
        _require(
            isinstance(self.test_fraction, float) and 0 < self.test_fraction < 1,
            "data",
            "test_fraction",
            self.test_fraction,
            "a number in (0, 1)",
        )


@dataclass(frozen=True)
class NetworkConfig:
    """The photonic network.

    Attributes:
        n_modes: ports per mesh; None picks the smallest number that fits the features plus
            at least one bias port and divides evenly into one output group per class.
        n_layers: number of mesh layers.
        topology: "triangular" (Reck) or "rectangular" (Clements).
        activation: electronic activation between layers, "abs" or "identity".
        output_groups: output ports summed into each class; None splits the ports evenly.
        logit_scale: digital gain from detected output power to logits.
        input_power: total launched power of every sample (units of the launched power).
        input_fill: fraction of the input power that the largest training sample's
            features use; the rest goes to the bias ports.
        initialization: initial phases, "uniform" or "haar" (Haar-random meshes).
    """

    n_modes: int | None = None
    n_layers: int = 3
    topology: str = "triangular"
    activation: str = "abs"
    output_groups: tuple[tuple[int, ...], ...] | None = None
    logit_scale: float = 20.0
    input_power: float = 1.0
    input_fill: float = 0.6
    initialization: str = "uniform"

    def __post_init__(self) -> None:
        if self.output_groups is not None:
            groups = self.output_groups
            valid = isinstance(groups, (list, tuple)) and all(
                isinstance(group, (list, tuple)) and all(_is_int(k) for k in group)
                for group in groups
            )
            _require(
                valid,
                "network",
                "output_groups",
                groups,
                "a list of lists of port numbers, e.g. [[0, 1], [2, 3]]",
            )
            object.__setattr__(self, "output_groups", tuple(tuple(g) for g in groups))
        _require(
            self.n_modes is None or (_is_int(self.n_modes) and self.n_modes >= 2),
            "network",
            "n_modes",
            self.n_modes,
            "an integer >= 2, or omitted",
        )
        _require(
            _is_int(self.n_layers) and self.n_layers >= 1,
            "network",
            "n_layers",
            self.n_layers,
            "an integer >= 1",
        )
        _require(
            self.initialization in INITIALIZATIONS,
            "network",
            "initialization",
            self.initialization,
            ", ".join(INITIALIZATIONS),
        )
        _require(
            self.topology in TOPOLOGIES,
            "network",
            "topology",
            self.topology,
            ", ".join(TOPOLOGIES),
        )
        _require(
            self.activation in ACTIVATIONS,
            "network",
            "activation",
            self.activation,
            ", ".join(ACTIVATIONS),
        )
        _require(
            _positive_number(self.logit_scale),
            "network",
            "logit_scale",
            self.logit_scale,
            "a number > 0",
        )
        _require(
            _positive_number(self.input_power),
            "network",
            "input_power",
            self.input_power,
            "a number > 0",
        )
        _require(
            isinstance(self.input_fill, float) and 0 < self.input_fill < 1,
            "network",
            "input_fill",
            self.input_fill,
            "a number in (0, 1)",
        )


@dataclass(frozen=True)
class TrainingConfig:
    """In situ training of the photonic network.

    Attributes:
        epochs: passes over the training set.
        batch_size: samples per measured gradient.
        optimizer: "adam" or "sgd", on the programmed phases.
        learning_rate: step size in rad per unit gradient (SGD) or rad (Adam).
        reference_every: compute the exact gradient for the gradient error every this many
            steps (1: every step).
        optical_loss_correction: rescale measured gradients by the nominal power
            transmission to each shifter, exact when every waveguide of every column has
            the same loss.
    """

    epochs: int = 60
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 0.05
    reference_every: int = 1
    optical_loss_correction: bool = False

    def __post_init__(self) -> None:
        _require(
            _is_int(self.epochs) and self.epochs >= 1,
            "training",
            "epochs",
            self.epochs,
            "an integer >= 1",
        )
        _require(
            _is_int(self.batch_size) and self.batch_size >= 1,
            "training",
            "batch_size",
            self.batch_size,
            "an integer >= 1",
        )
        _require(
            self.optimizer in OPTIMIZERS,
            "training",
            "optimizer",
            self.optimizer,
            ", ".join(OPTIMIZERS),
        )
        _require(
            _positive_number(self.learning_rate),
            "training",
            "learning_rate",
            self.learning_rate,
            "a number > 0",
        )
        _require(
            _is_int(self.reference_every) and self.reference_every >= 1,
            "training",
            "reference_every",
            self.reference_every,
            "an integer >= 1",
        )
        _require(
            isinstance(self.optical_loss_correction, bool),
            "training",
            "optical_loss_correction",
            self.optical_loss_correction,
            "true or false",
        )


@dataclass(frozen=True)
class BaselineSettings:
    """The digital baseline, trained for the same epochs and batch size on the same split.

    Attributes:
        hidden_sizes: widths of the hidden layers; None gives n_layers − 1 layers of
            n_modes units, the same depth and width as the photonic network.
        activation: "relu" or "tanh".
        optimizer: "adam" or "sgd".
        learning_rate: step size.
    """

    hidden_sizes: tuple[int, ...] | None = None
    activation: str = "relu"
    optimizer: str = "adam"
    learning_rate: float = 0.01

    def __post_init__(self) -> None:
        if self.hidden_sizes is not None:
            _require(
                isinstance(self.hidden_sizes, (list, tuple)),
                "baseline",
                "hidden_sizes",
                self.hidden_sizes,
                "a list of integers >= 1",
            )
            object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
            for width in self.hidden_sizes:
                _require(
                    _is_int(width) and width >= 1,
                    "baseline",
                    "hidden_sizes",
                    self.hidden_sizes,
                    "a list of integers >= 1",
                )
        _require(
            self.activation in ("relu", "tanh"),
            "baseline",
            "activation",
            self.activation,
            "relu, tanh",
        )
        _require(
            self.optimizer in OPTIMIZERS,
            "baseline",
            "optimizer",
            self.optimizer,
            ", ".join(OPTIMIZERS),
        )
        _require(
            _positive_number(self.learning_rate),
            "baseline",
            "learning_rate",
            self.learning_rate,
            "a number > 0",
        )


_SIMPLE_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "network": NetworkConfig,
    "training": TrainingConfig,
    "baseline": BaselineSettings,
}


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole training experiment: data, network, training, baseline, hardware and timing."""

    name: str = "moons-bench"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    baseline: BaselineSettings = field(default_factory=BaselineSettings)
    hardware: HardwareConfig = field(
        default_factory=lambda: HardwareConfig.from_mapping(
            {"preset": DEFAULT_HARDWARE_PRESET}
        )
    )
    timing: TimingConfig = field(default_factory=TimingConfig)

    def __post_init__(self) -> None:
        _require(
            isinstance(self.name, str) and self.name != "" and "/" not in self.name,
            "experiment",
            "name",
            self.name,
            "a non-empty string without '/'",
        )
        _require(
            _is_int(self.seed) and 0 <= self.seed < 2**32,
            "experiment",
            "seed",
            self.seed,
            "an integer in [0, 2**32)",
        )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ExperimentConfig:
        """Build a config from nested mappings (parsed TOML).

        Raises:
            ValueError: for an unknown key or table, or any invalid value; the message names
                the key and what is allowed.
        """
        allowed = ["name", "seed", *_SIMPLE_SECTIONS, "hardware", "timing"]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise ValueError(
                f"unknown config key {unknown[0]!r}; allowed top-level keys: {', '.join(allowed)}"
            )
        kwargs: dict[str, Any] = {}
        for key in ("name", "seed"):
            if key in values:
                kwargs[key] = values[key]
        for key, section_cls in _SIMPLE_SECTIONS.items():
            if key in values:
                kwargs[key] = _build_section(key, section_cls, values[key])
        if "hardware" in values:
            hardware = dict(_table("hardware", values["hardware"]))
            hardware.setdefault("preset", DEFAULT_HARDWARE_PRESET)
            kwargs["hardware"] = HardwareConfig.from_mapping(hardware)
        if "timing" in values:
            kwargs["timing"] = TimingConfig.from_mapping(
                _table("timing", values["timing"])
            )
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as nested plain values, leaving out keys whose value is None."""
        out: dict[str, Any] = {"name": self.name, "seed": self.seed}
        for key in _SIMPLE_SECTIONS:
            section = getattr(self, key)
            out[key] = {
                f.name: _plain(getattr(section, f.name))
                for f in fields(section)
                if getattr(section, f.name) is not None
            }
        # TOML has no null, so fields that are None are left out. They read back as None
        # only when the base preset is "ideal", because its optional fields are all None.
        out["hardware"] = {"preset": "ideal", **_without_none(self.hardware.to_dict())}
        out["timing"] = self.timing.to_dict()
        return out

    def to_toml(self) -> str:
        """Return the config as TOML text that ``load_config`` reads back to an equal config."""
        return tomli_w.dumps(self.to_dict())

    def with_overrides(
        self, *, seed: int | None = None, epochs: int | None = None
    ) -> ExperimentConfig:
        """Return a copy with the seed, the number of epochs, or both replaced."""
        config = self
        if seed is not None:
            config = replace(config, seed=seed)
        if epochs is not None:
            config = replace(config, training=replace(config.training, epochs=epochs))
        return config


def _without_none(table: dict[str, Any]) -> dict[str, Any]:
    """Drop keys whose value is None, at every depth (TOML has no null)."""
    return {
        key: _without_none(value) if isinstance(value, dict) else value
        for key, value in table.items()
        if value is not None
    }


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _table(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"config key {name!r} must be a table, got {value!r}")
    return value


def _build_section(name: str, cls: type, values: Any) -> Any:
    values = _table(name, values)
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in [{name}]; allowed keys: {', '.join(allowed)}"
        )
    try:
        return cls(**values)
    except TypeError as error:
        raise ValueError(f"invalid [{name}] table: {error}") from None


BUNDLED_CONFIGS = Path(__file__).resolve().parent / "configs"


def bundled_config_names() -> list[str]:
    """Names of the configs shipped with the package (file names without ``.toml``)."""
    return sorted(path.stem for path in BUNDLED_CONFIGS.glob("*.toml"))


def load_config(path: str | Path | None = None) -> ExperimentConfig:
    """Read an experiment config from a TOML file; with no path, return the default config.

    A path that is not a file but is the name of a bundled config (see
    ``bundled_config_names``) loads that config.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file is not valid TOML or a key or value is invalid.
    """
    if path is None:
        return ExperimentConfig()
    path = Path(path)
    if not path.is_file() and (BUNDLED_CONFIGS / f"{path}.toml").is_file():
        path = BUNDLED_CONFIGS / f"{path}.toml"
    if not path.is_file():
        raise FileNotFoundError(
            f"config file {str(path)!r} not found; give a TOML file or one of the bundled "
            f"configs: {', '.join(bundled_config_names())}"
        )
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(
            f"config file {str(path)!r} is not valid TOML: {error}"
        ) from None
    return ExperimentConfig.from_mapping(values)
