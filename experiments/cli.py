"""The ``photonic-backprop`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from experiments.blas import limit_blas_threads
from experiments.config import load_config

logger = logging.getLogger(__name__)


def _build_parser() -> argparse.ArgumentParser:
    # The logging options are accepted before and after the command name.
    logging_options = argparse.ArgumentParser(add_help=False)
    logging_options.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="show debug logs (the default shows info logs)",
    )
    logging_options.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show only warnings and errors, and no progress bars",
    )
    parser = argparse.ArgumentParser(
        prog="photonic-backprop",
        description="Simulated MZI-mesh hardware trained by in situ backpropagation.",
        parents=[logging_options],
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train",
        parents=[logging_options],
        help="train a photonic network in situ beside a digital baseline",
        description="Train a photonic network by measured in situ gradients and a digital "
        "baseline on the same split, and write a results folder.",
    )
    train.add_argument(
        "config",
        nargs="?",
        help="TOML config file, or the name of a bundled config (moons-ideal, "
        "moons-bench, iris-ideal); the default config if omitted",
    )
    train.add_argument(
        "--results-dir",
        default="results",
        help="folder that receives the run folder (default: results)",
    )
    train.add_argument("--seed", type=int, help="override the config's seed")
    train.add_argument(
        "--epochs", type=int, help="override the number of training epochs"
    )
    train.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config as TOML and exit",
    )
    train.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )
    _add_error_sources_parser(commands, logging_options)
    _add_schedule_parser(commands, logging_options)
    _add_sweep_parser(commands, logging_options)
    _add_reproduce_parser(commands, logging_options)
    return parser


def _add_error_sources_parser(
    commands: argparse._SubParsersAction, logging_options: argparse.ArgumentParser
) -> None:
    error_sources = commands.add_parser(
        "error-sources",
        parents=[logging_options],
        help="measure the gradient error of each hardware error source alone",
        description="Measure the in situ gradient error of every hardware error source "
        "alone at four strengths and several seeds, write a results folder and print "
        "the table of the cosine distance 1 − ĝ·g between the unit-normalised measured "
        "and exact gradients, for each reference.",
    )
    error_sources.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="number of seeds per source and strength (default: 20)",
    )
    error_sources.add_argument(
        "--results-dir",
        default="results",
        help="folder that receives the run folder (default: results)",
    )
    error_sources.add_argument(
        "--reference",
        choices=("device", "nominal", "both"),
        default="device",
        help="exact gradient to compare the measured one with: device (the realised "
        "device, with respect to the programmed phases), nominal (the ideal device "
        "programmed with the same phases) or both (default: device)",
    )
    error_sources.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )


def _add_schedule_parser(
    commands: argparse._SubParsersAction, logging_options: argparse.ArgumentParser
) -> None:
    schedule = commands.add_parser(
        "schedule",
        parents=[logging_options],
        help="compare time, energy and gradient error of the gradient methods",
        description="Simulate training steps of in situ backpropagation, finite "
        "differences and the hybrid method on the time-multiplexed and pipelined "
        "architectures, print the time and energy breakdown and write the plots to "
        "a results folder.",
    )
    schedule.add_argument(
        "config",
        nargs="?",
        help="TOML schedule config; the defaults (N = 64, 2 layers, thermo-optic "
        "chip) if omitted",
    )
    schedule.add_argument(
        "--results-dir",
        default="results",
        help="folder that receives the run folder (default: results)",
    )


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor",
        choices=("processes", "dask-local"),
        default="processes",
        help="where points run: local worker processes, or a local Dask cluster of "
        "--workers single-threaded processes (default: processes)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the points on the running Dask cluster whose scheduler has this "
        "address, of the form tcp://host:port (e.g. tcp://10.0.0.5:8786)",
    )
    parser.add_argument(
        "--results-dir",
        default="results",
        help="folder that receives the run folder (default: results)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar"
    )


def _add_sweep_parser(
    commands: argparse._SubParsersAction, logging_options: argparse.ArgumentParser
) -> None:
    from experiments.sweep import bundled_sweep_names

    sweep = commands.add_parser(
        "sweep",
        parents=[logging_options],
        help="run a grid of experiments over seeds, resuming where a run stopped",
        description="Run every point of a sweep config (grid values × seeds) that "
        "results/sweeps/<name>/points.jsonl does not contain yet, then write the "
        "tables and the plot of mean ± std over seeds and print the table.",
    )
    sweep.add_argument(
        "config",
        help="TOML sweep config, or the name of a bundled sweep ("
        + ", ".join(bundled_sweep_names())
        + ")",
    )
    sweep.add_argument(
        "--workers",
        type=int,
        help="worker processes (Dask workers with --executor dask-local); "
        "default: the config's [sweep] workers",
    )
    _add_executor_options(sweep)
    sweep.add_argument(
        "--collect",
        action="store_true",
        help="run nothing; tabulate the points already in the points file",
    )


def _add_reproduce_parser(
    commands: argparse._SubParsersAction, logging_options: argparse.ArgumentParser
) -> None:
    from experiments.reproduce import SIZES

    reproduce = commands.add_parser(
        "reproduce",
        parents=[logging_options],
        help="reproduce a published result and write a report beside it",
        description="Run a reproduction of a published result and write report.md, "
        "summary.json and its plots into results/reproduce/<name>-<size>; a rerun "
        "skips the points a stopped run finished.",
    )
    reproduce.add_argument("name", nargs="?", help="reproduction to run (see --list)")
    reproduce.add_argument(
        "--list", action="store_true", help="list the reproductions and exit"
    )
    reproduce.add_argument(
        "--size",
        choices=SIZES,
        default="default",
        help="smoke: a seconds-long check of the code path; default: from about 20 s "
        "to 12 minutes on 2 cores; full: the published size (default: default)",
    )
    reproduce.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (Dask workers with --executor dask-local) (default: 1)",
    )
    _add_executor_options(reproduce)


def _report_unwritable(results_dir: str, error: OSError) -> int:
    """Print why the results folder cannot be written and return the exit status 2."""
    print(
        f"photonic-backprop: error: cannot write the results folder under "
        f"{results_dir!r}: {error}",
        file=sys.stderr,
    )
    return 2


QUIET_LIBRARIES = ("distributed", "tornado", "bokeh")
"""Loggers of the Dask stack, whose records below warning level are not shown."""


class _QuietLibrariesFilter(logging.Filter):
    """Drop the records of the ``QUIET_LIBRARIES`` loggers below warning level.

    A filter on the handler, because setting the level of the "distributed" logger does
    not last: importing distributed sets its loggers to the levels of the Dask config,
    and distributed is imported only when a sweep needs it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        library = record.name.partition(".")[0]
        return library not in QUIET_LIBRARIES or record.levelno >= logging.WARNING


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _build_parser().parse_args(argv)
    level = logging.INFO
    if getattr(args, "verbose", 0):
        level = logging.DEBUG
    if getattr(args, "quiet", False):
        level = logging.WARNING
        # -q means no progress bars either, whatever the command.
        args.no_progress = True
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Dask logs every worker start and stop, and every client connection, at info
    # level.
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _QuietLibrariesFilter) for f in handler.filters):
            handler.addFilter(_QuietLibrariesFilter())
    # Mesh products are too small to gain from BLAS threads; experiments/blas.py gives
    # the figures.
    limit_blas_threads()

    if args.command == "train":
        return _train(args)
    if args.command == "error-sources":
        return _error_sources(args)
    if args.command == "schedule":
        return _schedule(args)
    if args.command == "sweep":
        return _sweep(args)
    if args.command == "reproduce":
        return _reproduce(args)
    return 2


def _print_error(message: object) -> int:
    """Print an error message and return the exit status 2."""
    print(f"photonic-backprop: error: {message}", file=sys.stderr)
    return 2


def _run_points_command(
    run: Callable[[], Any], results_dir: str
) -> tuple[int, Any | None]:
    """Run a command that runs sweep points; return (exit status, its result or None).

    Errors are printed here: bad input, an unreachable scheduler or another run of the
    same points gives status 2, a failed point 1 and an interruption 130, with the
    finished points kept for a rerun.
    """
    from experiments.sweep import PointFailed, SweepExecutorError

    try:
        return 0, run()
    except (FileNotFoundError, ValueError, SweepExecutorError) as error:
        return _print_error(error), None
    except PointFailed as error:
        # The traceback of the cause is logged at debug level, so -v shows it.
        print(
            f"photonic-backprop: {error}: {error.__cause__!r}; the finished points are "
            "saved and a rerun resumes after them",
            file=sys.stderr,
        )
        return 1, None
    except BlockingIOError as error:
        # Another run has the lock on the points file.
        return _print_error(error.strerror), None
    except OSError as error:
        return _report_unwritable(results_dir, error), None
    except KeyboardInterrupt:
        print(
            "photonic-backprop: interrupted; the finished points are saved and a "
            "rerun resumes after them",
            file=sys.stderr,
        )
        return 130, None


def _sweep(args: argparse.Namespace) -> int:
    from experiments.sweep import (
        collect_sweep,
        load_sweep_config,
        run_sweep,
        sweep_folder,
    )

    def run() -> Any:
        config, text = load_sweep_config(args.config)
        if args.collect:
            return collect_sweep(config, sweep_folder(config, args.results_dir))
        return run_sweep(
            config,
            args.results_dir,
            config_text=text,
            workers=args.workers,
            executor=args.executor,
            scheduler=args.scheduler,
            progress=not args.no_progress,
        )

    status, summary = _run_points_command(run, args.results_dir)
    if summary is None:
        return status
    print(summary.table)
    print()
    if summary.missing:
        print(f"{summary.missing} points have no result yet")
    print(f"results written to {summary.folder}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from experiments.reproduce import (
        REPRODUCTIONS,
        format_reproduction_list,
        format_targets,
        run_reproduction,
    )

    if args.list:
        print(format_reproduction_list())
        return 0
    if args.name is None:
        return _print_error(
            "give the name of a reproduction, or --list; known: "
            + ", ".join(REPRODUCTIONS)
        )
    command = f"photonic-backprop reproduce {args.name} --size {args.size}"

    def run() -> Any:
        from experiments.sweep import check_executor_options, check_scheduler

        # Checked here because run_reproduction writes the run folder before its
        # points start.
        check_executor_options(args.workers, args.executor, args.scheduler)
        if args.scheduler is not None:
            check_scheduler(args.scheduler)
        return run_reproduction(
            args.name,
            args.results_dir,
            size=args.size,
            workers=args.workers,
            executor=args.executor,
            scheduler=args.scheduler,
            progress=not args.no_progress,
            command=command,
        )

    status, outcome = _run_points_command(run, args.results_dir)
    if outcome is None:
        return status
    result, report = outcome
    if result.targets:
        print(format_targets(result.targets))
        print()
    print(f"report written to {report}")
    return 0


def _error_sources(args: argparse.Namespace) -> int:
    from experiments.error_sources import (
        DEFAULT_SEEDS,
        REFERENCE_TITLES,
        format_summary_table,
        make_run_folder,
        run_error_sources,
    )

    seeds = DEFAULT_SEEDS if args.seeds is None else args.seeds
    if seeds < 1:
        print(
            f"photonic-backprop: error: --seeds {seeds} is invalid; give at least 1",
            file=sys.stderr,
        )
        return 2
    try:
        folder = make_run_folder(args.results_dir)
        result = run_error_sources(
            folder,
            seeds=seeds,
            progress=not args.no_progress,
            reference=args.reference,
        )
    except OSError as error:
        return _report_unwritable(args.results_dir, error)
    for reference in result.references:
        print(f"gradient error 1 − ĝ·g, {REFERENCE_TITLES[reference]}\n")
        print(format_summary_table(result.points, reference=reference))
        print()
    print(f"results written to {result.folder}")
    return 0


def _schedule(args: argparse.Namespace) -> int:
    from experiments.schedule import (
        format_schedule_summary,
        load_schedule_config,
        run_schedule,
    )

    try:
        config = load_schedule_config(args.config)
        run = run_schedule(config, args.results_dir, args.config)
    except (FileNotFoundError, ValueError) as error:
        print(f"photonic-backprop: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        return _report_unwritable(args.results_dir, error)
    print(format_schedule_summary(run.summary))
    return 0


def _train(args: argparse.Namespace) -> int:
    from experiments.train import RunInterrupted, format_summary, prepare, run_training

    try:
        config = load_config(args.config).with_overrides(
            seed=args.seed, epochs=args.epochs
        )
        if args.print_config:
            resolved, _ = prepare(config)
            print(resolved.to_toml(), end="")
            return 0
        result = run_training(
            config, args.results_dir, args.config, progress=not args.no_progress
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"photonic-backprop: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        return _report_unwritable(args.results_dir, error)
    except RunInterrupted as interrupted:
        print(
            "photonic-backprop: interrupted; finished epochs are saved in "
            f"{interrupted.folder}",
            file=sys.stderr,
        )
        return 130
    except KeyboardInterrupt:
        print("photonic-backprop: interrupted before the run started", file=sys.stderr)
        return 130
    print(format_summary(result.summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
