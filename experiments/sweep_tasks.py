"""Built-in point functions for ``experiments.sweep.run_points``.

- ``train``: trains the photonic network of an experiment config with some keys changed
  and returns its final accuracy, loss, gradient error and simulated cost per step.
- ``demo``: cheap arithmetic on one random draw, for testing the sweep engine.

The experiment modules are imported inside ``train`` only, because they import
scikit-learn, which takes seconds, and ``demo`` workers do not need it.

Both follow the point-function contract: ``function(params, seed) -> dict``, every
random number drawn from ``seed``, the same inputs giving bitwise the same outputs.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from experiments.config import ExperimentConfig

TRAIN_SPECIAL_KEYS = ("base", "seed_index")
"""Parameters of ``train`` that are not dotted keys of the experiment config."""

DEMO_KEYS = ("x", "scale", "sleep_s", "fail", "seed_index")
"""Parameters that ``demo`` accepts."""


def demo(params: dict[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """Return ``x + scale·mean(n)`` for four standard normal draws n from ``seed``.

    Parameters (all optional): ``x`` (default 0), ``scale`` (default 1), ``sleep_s``
    (wall time to wait first, in s, to make the point slow without changing its
    result) and ``fail`` (raise RuntimeError when true).

    Returns:
        ``value``, the first draw ``draw`` and the sum of squares ``sum_squares``.

    Raises:
        RuntimeError: when ``params["fail"]`` is true.
    """
    check_demo_params(params)
    if params.get("sleep_s", 0):
        time.sleep(params["sleep_s"])
    if params.get("fail", False):
        raise RuntimeError(f"demo point with params {params} failed on request")
    draws = np.random.default_rng(seed).standard_normal(4)
    x = float(params.get("x", 0.0))
    scale = float(params.get("scale", 1.0))
    return {
        "value": x + scale * float(draws.mean()),
        "draw": float(draws[0]),
        "sum_squares": float(np.sum(draws**2)),
    }


def check_demo_params(params: Mapping[str, Any]) -> None:
    """Check the parameters of ``demo``.

    Raises:
        ValueError: for a key outside ``DEMO_KEYS`` or a value of the wrong type.
    """
    for key, value in params.items():
        if key not in DEMO_KEYS:
            raise ValueError(
                f"parameter {key!r} is unknown to the demo task; allowed: "
                f"{', '.join(DEMO_KEYS)}"
            )
        if key in ("x", "scale", "sleep_s") and (
            isinstance(value, bool) or not isinstance(value, (int, float))
        ):
            raise ValueError(
                f"demo parameter {key} = {value!r} is invalid; give a number"
            )
        if key == "sleep_s" and value < 0:
            raise ValueError(
                f"demo parameter sleep_s = {value!r} is invalid; give >= 0"
            )


demo.check_params = check_demo_params  # type: ignore[attr-defined]


# --- train ------------------------------------------------------------------------


def train(params: dict[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """Train the photonic network of one experiment config in situ and return its
    final figures, writing no results folder.

    ``params["base"]`` is the experiment the point starts from: the name of a bundled
    config, a TOML path, or a table of config keys. Without it the point starts from
    the default experiment. Every other key except ``seed_index`` is a dotted key of
    the experiment config that replaces one value, e.g.
    ``"hardware.static.coupler_error_std": 0.02`` or ``"training.epochs": 5``.

    The run seed (data split, chips, shuffling, baseline seed of the config) is
    ``seed.generate_state(1)[0]``, returned as ``run_seed``. ``photonic-backprop train``
    with the same config and ``--seed run_seed`` gives the same photonic figures.

    Returns:
        ``test_accuracy``, ``train_accuracy``, ``train_loss`` and ``test_loss`` (nats)
        after the last epoch. The medians over all steps of the gradient cosine distance
        1 − ĝ·g and of the relative L2 gradient error, None if no step computed the
        exact gradient. The simulated ``step_time_s`` (s) and ``step_energy_j`` (J) of
        one training step, the number of ``steps``, and ``run_seed``.

    Raises:
        ValueError: for an unknown key, an invalid value or a base config not found.
    """
    from experiments.train import Trainer, build_network, evaluate, prepare
    from photonic.encoding import AmplitudeEncoder

    run_seed = int(seed.generate_state(1)[0])
    config = experiment_config(params).with_overrides(seed=run_seed)
    config, dataset = prepare(config)

    # The same seeding and evaluation order as experiments.train.run_training: the
    # evaluations draw per-pass noise from the chips, so skipping them would change the
    # training that follows.
    chip_seed, shuffle_seed = np.random.SeedSequence(config.seed).spawn(2)
    network = build_network(config, chip_seed)
    encoder = AmplitudeEncoder(
        config.network.n_modes, config.network.input_power, config.network.input_fill
    )
    encoder.fit(dataset.x_train)
    x_train = encoder.transform(dataset.x_train)
    x_test = encoder.transform(dataset.x_test)
    y_train, y_test = dataset.y_train, dataset.y_test
    trainer = Trainer(config, network, shuffle_seed)

    train_loss, train_accuracy = evaluate(network, x_train, y_train)
    test_loss, test_accuracy = evaluate(network, x_test, y_test)
    steps: list[dict[str, Any]] = []
    for _ in range(config.training.epochs):
        steps += trainer.train_epoch(x_train, y_train)
        train_loss, train_accuracy = evaluate(network, x_train, y_train)
        test_loss, test_accuracy = evaluate(network, x_test, y_test)

    report = trainer.example_report
    return {
        "test_accuracy": test_accuracy,
        "train_accuracy": train_accuracy,
        "train_loss": float(train_loss),
        "test_loss": float(test_loss),
        "cosine_distance_median": _median([s.get("cosine_distance") for s in steps]),
        "relative_error_median": _median([s.get("relative_error") for s in steps]),
        "step_time_s": report.step_time_s,
        "step_energy_j": report.energy_j,
        "steps": trainer.step_count,
        "run_seed": run_seed,
    }


def _median(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.median(finite)) if finite else None


def experiment_config(params: Mapping[str, Any]) -> ExperimentConfig:
    """Build the experiment config of a ``train`` point: its base with every dotted key
    of ``params`` applied, in the order of ``params``.

    Raises:
        ValueError: for a key that is not a field of the experiment config (or is
            ``seed``, which the point's seed sets), an invalid value, or a base config
            not found.
    """
    from experiments.config import ExperimentConfig

    values = _base_mapping(params.get("base", {}))
    for key, value in params.items():
        if key in TRAIN_SPECIAL_KEYS:
            continue
        check_config_key(key)
        _set_dotted(values, key, value)
    try:
        return ExperimentConfig.from_mapping(values)
    except ValueError as error:
        raise ValueError(f"train point {_describe(params)}: {error}") from None


def check_train_params(params: Mapping[str, Any]) -> None:
    """Check that a ``train`` point can run: its keys, values and dataset fit.

    Raises:
        ValueError: as ``experiment_config``, or for a network that does not fit the
            dataset.
    """
    # Points that differ only in their seed index share one check.
    without_seed = {k: v for k, v in params.items() if k != "seed_index"}
    _check_train_cached(json.dumps(without_seed))


@functools.lru_cache(maxsize=256)
def _check_train_cached(params_json: str) -> None:
    from experiments.train import prepare

    params = json.loads(params_json)
    config = experiment_config(params)
    try:
        prepare(config)
    except ValueError as error:
        raise ValueError(f"train point {_describe(params)}: {error}") from None


train.check_params = check_train_params  # type: ignore[attr-defined]


def _describe(params: Mapping[str, Any]) -> str:
    swept = {k: v for k, v in params.items() if k not in TRAIN_SPECIAL_KEYS}
    return json.dumps(swept, sort_keys=True)


def check_config_key(key: str) -> None:
    """Check that a dotted key names a field or table of the experiment config.

    The tables nest as in the TOML file: ``data``, ``network``, ``training``,
    ``baseline``, ``timing`` (fields and ``preset``) and ``hardware`` (``preset``,
    ``passes`` and the sections of ``photonic.hardware.HardwareConfig``, with the
    detector tables ``monitor`` and ``output_detector`` inside each pass).

    Raises:
        ValueError: naming the key, the part not found and the allowed names there.
    """
    if not isinstance(key, str) or key == "":
        raise ValueError(f"parameter {key!r} is invalid; give a dotted config key")
    if key == "seed":
        raise ValueError(
            "parameter 'seed' cannot be swept: the point's seed sets the run seed; "
            "list seeds in [sweep] seeds instead"
        )
    node: Any = _config_template()
    parts = key.split(".")
    for depth, part in enumerate(parts):
        children = _children(node)
        if children is None:
            parent = ".".join(parts[:depth])
            raise ValueError(
                f"parameter {key!r} is not a field of the experiment config: "
                f"{parent!r} is a value, not a table"
            )
        if part not in children:
            where = ".".join(parts[:depth]) or "the top level"
            raise ValueError(
                f"parameter {key!r} is not a field of the experiment config: "
                f"{part!r} is not in {where}; allowed: {', '.join(children)}"
            )
        node = children[part]


@functools.lru_cache(maxsize=1)
def _config_template() -> ExperimentConfig:
    from experiments.config import ExperimentConfig

    return ExperimentConfig()


def _children(node: Any) -> dict[str, Any] | None:
    """Return the keys a config table accepts, each with a template value, or None if
    ``node`` is a value rather than a table."""
    if not dataclasses.is_dataclass(node):
        return None
    children = {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}
    kind = type(node).__name__
    if kind == "HardwareConfig":
        children = {"preset": None, "passes": node.forward, **children}
    elif kind == "TimingConfig":
        children = {"preset": None, **children}
    return children


def _set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    *tables, leaf = key.split(".")
    node = values
    for depth, part in enumerate(tables):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(
                f"parameter {key!r} sets a key inside "
                f"{'.'.join(tables[: depth + 1])!r}, which is {child!r}, not a table"
            )
        node = child
    node[leaf] = value


def _base_mapping(base: Any) -> dict[str, Any]:
    if isinstance(base, Mapping):
        return copy.deepcopy(dict(base))
    if not isinstance(base, str):
        raise ValueError(
            f"base {base!r} is invalid; give a bundled config name, a TOML path or a "
            "table"
        )
    return copy.deepcopy(_read_base(base))


@functools.lru_cache(maxsize=32)
def _read_base(base: str) -> dict[str, Any]:
    from experiments.config import BUNDLED_CONFIGS, bundled_config_names

    path = Path(base)
    if not path.is_file() and (BUNDLED_CONFIGS / f"{base}.toml").is_file():
        path = BUNDLED_CONFIGS / f"{base}.toml"
    if not path.is_file():
        raise ValueError(
            f"base config {base!r} not found; give a TOML file or one of the bundled "
            f"configs: {', '.join(bundled_config_names())}"
        )
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ValueError(
            f"base config {str(path)!r} is not valid TOML: {error}"
        ) from None
