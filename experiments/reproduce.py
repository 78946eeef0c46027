"""Reproductions of published results: registry, run folder and the report they write.

Each reproduction lives in ``experiments/reproductions/<module>.py`` and exposes
``run(context: ReproductionContext) -> Reproduction``. The runner here makes the run
folder, writes the provenance before the work starts and the report after it ends.
The folder is ``<results_dir>/reproduce/<name>-<size>`` and stays the same between runs,
so a rerun finds the points a killed run finished (``points.jsonl``) and skips them.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.provenance import collect_provenance

logger = logging.getLogger(__name__)

REPRODUCTIONS: dict[str, str] = {
    "fang2019-fidelity": "experiments.reproductions.fang2019:run",
    "clements-vs-reck": "experiments.reproductions.clements_vs_reck:run",
    "pai2023-toy": "experiments.reproductions.pai2023_toy:run",
    "pai2023-gradient-error": "experiments.reproductions.pai2023_gradient_error:run",
    "pai2023-64port": "experiments.reproductions.pai2023_64port:run",
    "hughes2018-ring": "experiments.reproductions.hughes2018_ring:run",
    "offline-vs-insitu": "experiments.reproductions.offline_vs_insitu:run",
}
"""Reproduction names and the ``module:function`` that runs each."""

REPRODUCTION_SUMMARIES: dict[str, str] = {
    "fang2019-fidelity": "256-port mesh fidelity with component errors (Fang et al. 2019)",
    "clements-vs-reck": "Clements against Reck meshes under loss and coupler errors",
    "pai2023-toy": "toy sets trained in silico and in situ (Pai et al. 2023)",
    "pai2023-gradient-error": "gradient error on a perturbed 4×4 mesh (Pai et al. 2023)",
    "pai2023-64port": "64-port network under I/O and monitor noise (Pai et al. 2023)",
    "hughes2018-ring": "ring classification on six 4×4 meshes (Hughes et al. 2018)",
    "offline-vs-insitu": "offline training on imperfect chips, recovered in situ",
}
"""One-line description of every reproduction in ``REPRODUCTIONS``."""

SIZES = ("smoke", "default", "full")
"""Run sizes: "smoke" is a seconds-long check of the code path for tests. "default" is
sized for a small machine: with 2 worker processes on a 2-core VM that was running
other jobs, the reproductions took from about 20 s (clements-vs-reck) to 12 minutes
(pai2023-64port). "full" is the published size where it differs from "default"."""

EXECUTORS = ("processes", "dask-local")
"""Executors of sweep points when no scheduler address is given: local worker
processes, or a local Dask cluster."""


@dataclass(frozen=True)
class ReproductionContext:
    """Options of one reproduction run, taken from the command line.

    Attributes:
        name: the reproduction's name.
        folder: the run folder; ``points.jsonl`` in it contains the finished points.
        size: "smoke", "default" or "full".
        workers: worker processes for sweep points.
        executor: "processes" or "dask-local".
        scheduler: address of a running Dask scheduler, or None.
        progress: whether to show progress bars.
    """

    name: str
    folder: Path
    size: str = "default"
    workers: int = 1
    executor: str = "processes"
    scheduler: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise ValueError(f"size {self.size!r} is unknown; choose one of {SIZES}")
        if (
            isinstance(self.workers, bool)
            or not isinstance(self.workers, int)
            or self.workers < 1
        ):
            raise ValueError(
                f"workers {self.workers!r} is invalid; give an integer >= 1"
            )
        if self.executor not in EXECUTORS:
            raise ValueError(
                f"executor {self.executor!r} is unknown; choose one of {EXECUTORS}"
            )

    @property
    def points_path(self) -> Path:
        """The JSON-lines file of finished sweep points."""
        return self.folder / "points.jsonl"

    def run_points(
        self, task: str, points: Sequence[Any], root_seed: int
    ) -> list[dict[str, Any]]:
        """Run sweep ``points`` of ``task`` with this context's workers and points file.

        ``experiments.sweep.run_points`` describes the arguments, the records returned
        and the errors raised.
        """
        from experiments.sweep import run_points

        return run_points(
            task,
            points,
            self.points_path,
            root_seed=root_seed,
            workers=self.workers,
            executor=self.executor,
            scheduler=self.scheduler,
            progress=self.progress,
            description=self.name,
        )


@dataclass(frozen=True)
class TargetCheck:
    """One published figure beside ours.

    Attributes:
        quantity: what is compared, with its setting ("F at σ = 0.01").
        published: the published value, as printed.
        measured: our value, as printed.
        target: the acceptance rule ("within ±0.02"), or "" for a figure only reported.
        met: whether the rule holds; None when there is no rule.
    """

    quantity: str
    published: str
    measured: str
    target: str = ""
    met: bool | None = None


@dataclass(frozen=True)
class Reproduction:
    """Result of a reproduction: its tables, target checks, figures and summary.

    Attributes:
        title: one line naming the published result and its source.
        setup: a paragraph on what was simulated, with sizes and seeds.
        tables: markdown tables (each a string) of the published and measured numbers.
        targets: the acceptance checks.
        figures: plot files written into the run folder.
        summary: JSON-serialisable figures for ``summary.json``.
        notes: short paragraphs on differences from the published setup.
    """

    title: str
    setup: str
    tables: list[str]
    targets: list[TargetCheck] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def check_name(name: str) -> str:
    """Return ``name`` if it is a known reproduction.

    Raises:
        ValueError: naming the unknown value and listing the known ones.
    """
    if name not in REPRODUCTIONS:
        known = ", ".join(REPRODUCTIONS)
        raise ValueError(f"reproduction {name!r} is unknown; choose one of: {known}")
    return name


def format_reproduction_list() -> str:
    """Return one line per reproduction, its name and its one-line description, with
    the descriptions aligned in a column, for ``reproduce --list``."""
    width = max(len(name) for name in REPRODUCTIONS)
    return "\n".join(
        f"{name:<{width}}  {REPRODUCTION_SUMMARIES.get(name, '')}".rstrip()
        for name in REPRODUCTIONS
    )


def _runner(name: str) -> Callable[[ReproductionContext], Reproduction]:
    module_name, function_name = REPRODUCTIONS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"reproduction {name!r} is registered but its module {module_name!r} "
            f"cannot be imported: {type(error).__name__}: {error}"
        ) from error
    runner = getattr(module, function_name, None)
    if runner is None:
        raise ValueError(
            f"reproduction {name!r} is registered as {REPRODUCTIONS[name]!r}, but "
            f"module {module_name!r} has no function {function_name!r}"
        )
    return runner


def format_targets(targets: list[TargetCheck]) -> str:
    """Format the target checks as a markdown table."""
    lines = [
        "| quantity | published | ours | target | met |",
        "|---|---|---|---|---|",
    ]
    for check in targets:
        if check.met is None:
            met = ""
        elif check.met:
            met = "yes"
        else:
            met = "**no**"
        lines.append(
            f"| {check.quantity} | {check.published} | {check.measured} | "
            f"{check.target} | {met} |"
        )
    return "\n".join(lines)


def format_report(result: Reproduction, command: str) -> str:
    """Format the markdown report of a finished reproduction."""
    parts = [f"# {result.title}", "", f"Command: `{command}`", "", result.setup, ""]
    for table in result.tables:
        parts += [table, ""]
    if result.targets:
        parts += [format_targets(result.targets), ""]
    for note in result.notes:
        parts += [note, ""]
    for figure in result.figures:
        parts += [f"![{figure.stem}]({figure.name})", ""]
    return "\n".join(parts)


def _write_text(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def run_reproduction(
    name: str,
    results_dir: str | Path = "results",
    *,
    size: str = "default",
    workers: int = 1,
    executor: str = "processes",
    scheduler: str | None = None,
    progress: bool = True,
    command: str | None = None,
) -> tuple[Reproduction, Path]:
    """Run the reproduction ``name`` and write ``report.md`` and ``summary.json`` into its
    run folder, and append one line of provenance per run to ``provenance.jsonl``, so
    the provenance of points from earlier runs is kept.

    Returns:
        The reproduction and the path of its report.

    Raises:
        ValueError: for an unknown name, size or executor, a worker count below 1, or
            a reproduction whose module cannot be imported (the message ends with the
            import error, which is also the ``__cause__``) or lacks its function.
        OSError: if the run folder cannot be written.
    """
    check_name(name)
    folder = Path(results_dir) / "reproduce" / f"{name}-{size}"
    context = ReproductionContext(
        name=name,
        folder=folder,
        size=size,
        workers=workers,
        executor=executor,
        scheduler=scheduler,
        progress=progress,
    )
    # The runner is imported before the folder is made, so a broken module leaves
    # no empty run folder behind.
    runner = _runner(name)
    folder.mkdir(parents=True, exist_ok=True)
    provenance = collect_provenance(seed=0, config_path=None)
    provenance["reproduction"] = {"name": name, "size": size}
    with (folder / "provenance.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(provenance) + "\n")
    logger.info("reproduction %s (%s size) in %s", name, size, folder)
    result = runner(context)
    command = command or f"photonic-backprop reproduce {name}"
    report = folder / "report.md"
    _write_text(report, format_report(result, command))
    _write_text(
        folder / "summary.json",
        json.dumps(
            {
                "name": name,
                "size": size,
                "targets": [check.__dict__ for check in result.targets],
                **result.summary,
            },
            indent=2,
        )
        + "\n",
    )
    return result, report
