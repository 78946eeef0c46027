"""Compare neuroptica's forward pass and in situ gradient with ours on the same mesh.

Both packages get the same rectangular mesh (the same θ, φ and output phases of one ideal
chip), the same batch of complex inputs and the same complex mean-squared-error targets.
neuroptica runs in its own virtual environment, in a worker process
(``benchmarks/neuroptica_worker.py``) that reports its times as JSON lines on stdout.
Ours runs in this process. The two sides take turns, one repeat each, and the side that
goes first alternates, so machine noise affects both. Every time is the best of
``--calls`` calls, every figure is the median over ``--repeats`` repeats, and the
speed-up is neuroptica's time divided by ours, computed per repeat. BLAS runs on one
thread in both processes: OPENBLAS_NUM_THREADS, MKL_NUM_THREADS, OMP_NUM_THREADS and
NUMBA_NUM_THREADS are 1 in both environments, and threadpoolctl also limits ours.

neuroptica's MZI has its external phase on the output arm and ours on the input arm, so
its mesh is built as the mirror image of ours (see the worker's docstring). The driver
checks three things before any timing. neuroptica's transfer matrix must be Uᵀ of ours.
Its outputs must equal our mesh's outputs for light launched into the output ports.
Its gradient, with every option, must equal −Im(a·b) computed from our fields. The run
stops if a difference exceeds 1e-9 relative to the largest value.

What is timed:
    forward pass, outputs only. neuroptica: ``ClementsLayer.forward_pass(X)``, which
        composes the N×N transfer matrix and multiplies the batch by it. Ours:
        ``photonic.sweep.propagate`` on a new device, which does the same: U composed
        from the cells, then one product.
    forward pass, fields at every phase shifter. neuroptica: ``forward_pass`` with
        ``cache_fields=True``. Ours: ``RealisedMesh.forward(x, record=True)``.
    adjoint-field gradient. neuroptica: one step of ``InSituAdam.fit`` without the update
        (forward pass, loss, ``backward_pass``, ``OpticalMesh.compute_gradients`` and the
        batch mean per component). Ours: ``photonic.reference.exact_gradient``, the same
        two-pass algorithm.
    full in situ gradient. neuroptica: the same step. Ours:
        ``photonic.insitu.measure_gradient``, the three optical passes with monitor
        powers (forward, adjoint, interference) on a one-layer ``PhotonicNetwork``.

neuroptica's rows use the fastest of its field options (``cache_fields``,
``use_partial_vectors``) by median. The full-gradient row is repeated with the defaults
of ``InSituAdam.fit``.

The CI does not run this script, because it needs neuroptica installed from PyPI into
``benchmarks/.venv-neuroptica``:

    python3 -m venv benchmarks/.venv-neuroptica
    benchmarks/.venv-neuroptica/bin/pip install neuroptica

Usage:
    python benchmarks/peer_neuroptica.py            # N = 64, batch 1024, 5 repeats
    python benchmarks/peer_neuroptica.py --smoke    # N = 8, batch 16, 2 repeats
"""

from __future__ import annotations

import os

# BLAS and numba read these once, when they load, so they are set before numpy is
# imported. The worker inherits them.
THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OMP_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)
for _variable in THREAD_VARIABLES:
    os.environ[_variable] = "1"

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
from threadpoolctl import threadpool_limits

from photonic.losses import ComplexMSE

from peer_common import (
    Problem,
    Row,
    RowResult,
    build_problem,
    machine_description,
    our_environment,
    summarise,
    time_ours,
    write_problem,
)

logger = logging.getLogger(__name__)

BENCHMARKS = Path(__file__).resolve().parent
DEFAULT_VENV = BENCHMARKS / ".venv-neuroptica"
WORKER = BENCHMARKS / "neuroptica_worker.py"

# Relative agreement required between neuroptica and our mesh before timing.
AGREEMENT_TOLERANCE = 1e-9
# Required speed-up of our full in situ gradient over neuroptica's fastest option.
GRADIENT_TARGET = 50.0


@dataclass(frozen=True)
class PeerConfig:
    """Size and repetition of one comparison run.

    Attributes:
        modes: number of modes N of the rectangular mesh.
        batch: number of input vectors propagated at once.
        repeats: number of repeats. Every figure is the median over them.
        calls: calls of every operation per repeat. A repeat keeps the shortest.
        seed: seed of the chip's phases, the inputs and the targets.
    """

    modes: int = 64
    batch: int = 1024
    repeats: int = 5
    calls: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        minimum = {"modes": 2, "batch": 1, "repeats": 1, "calls": 1, "seed": 0}
        for name, lowest in minimum.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
                raise ValueError(
                    f"{name} {value!r} is invalid; it must be an integer >= {lowest}"
                )


FULL_RUN = PeerConfig()
SMOKE_RUN = PeerConfig(modes=8, batch=16, repeats=2, calls=1)


ROWS = (
    Row("forward pass, outputs only", "forward", "forward"),
    Row("forward pass, fields at every shifter", "forward_fields", "forward_fields"),
    Row("adjoint-field gradient (2 passes)", "gradient", "exact_gradient"),
    Row("full in situ gradient (3 passes)", "gradient", "measured_gradient"),
    Row(
        "full in situ gradient (3 passes)",
        "gradient",
        "measured_gradient",
        option="cache_fields=False, use_partial_vectors=False",
    ),
)
TARGET_ROW = 3


def mirrored_reference(problem: Problem) -> dict[str, np.ndarray]:
    """Compute, with our mesh, what neuroptica's mirrored mesh must return.

    neuroptica's mesh is ours with light launched into the output ports. Its outputs are
    therefore ``x @ U``. Its gradient of the mean ½|y − t|² is −Im(a·b) summed over
    the batch, with a the field of x travelling backward through our mesh and b the field
    of the adjoint source conj(y − t)/batch travelling forward. Both fields are taken at
    the same point of every phase shifter.
    """
    device = problem.device
    outputs, backward_fields = device.backward(problem.x, record=True)
    _, delta = ComplexMSE().value_and_adjoint(outputs, problem.targets)
    _, forward_fields = device.forward(delta, record=True)
    gradient = -np.imag(
        np.sum(backward_fields.stacked() * forward_fields.stacked(), axis=0)
    )
    return {
        "transfer_matrix": device.matrix().T,
        "outputs": outputs,
        "gradient": gradient,
    }


def check_agreement(problem: Problem, check_path: Path) -> dict[str, float]:
    """Compare neuroptica's saved results with ours and return the max |difference| of each.

    Raises:
        RuntimeError: if a difference exceeds ``AGREEMENT_TOLERANCE`` times the largest
            value of the quantity, which means the two meshes differ.
    """
    expected = mirrored_reference(problem)
    with np.load(check_path) as saved:
        neuroptica = {name: saved[name] for name in saved.files}

    pairs = {
        "transfer matrix": ("transfer_matrix", "transfer_matrix"),
        "outputs": ("outputs", "outputs"),
    }
    for index, option in enumerate(neuroptica["gradient_options"]):
        pairs[f"gradient ({option})"] = (f"gradient_{index}", "gradient")

    differences = {}
    for label, (theirs, ours) in pairs.items():
        difference = float(np.max(np.abs(neuroptica[theirs] - expected[ours])))
        scale = float(np.max(np.abs(expected[ours])))
        if difference > AGREEMENT_TOLERANCE * max(scale, 1e-300):
            raise RuntimeError(
                f"neuroptica's {label} differs from ours by {difference:.3e} "
                f"(largest value {scale:.3e}); the meshes do not match, so the "
                "timings would compare different devices"
            )
        differences[label] = difference
    return differences


def thread_environment() -> dict[str, str]:
    """Return the worker's environment: ours with one thread and no PYTHONPATH."""
    environment = dict(os.environ)
    for variable in THREAD_VARIABLES:
        environment[variable] = "1"
    environment.pop("PYTHONPATH", None)
    environment.pop("PYTHONHOME", None)
    return environment


def neuroptica_python(venv: Path) -> Path:
    """Return the Python interpreter of neuroptica's virtual environment.

    Raises:
        SystemExit: if the virtual environment is missing, with the command that
            creates it.
    """
    python = venv / "bin" / "python"
    if not python.exists():
        raise SystemExit(
            f"neuroptica's virtual environment is missing: {python} not found. "
            f"Create it with:\n  python3 -m venv {venv} && "
            f"{venv}/bin/pip install neuroptica"
        )
    return python


class NeuropticaWorker:
    """neuroptica's worker process, started with its virtual environment's Python.

    Args:
        venv: neuroptica's virtual environment.
        problem_path: problem file written by ``write_problem``.
        check_path: file the worker writes its results to, for ``check_agreement``.
        log_path: file that receives the worker's stderr.

    Raises:
        SystemExit: if the virtual environment is missing.
    """

    def __init__(
        self, venv: Path, problem_path: Path, check_path: Path, log_path: Path
    ) -> None:
        python = neuroptica_python(venv)
        self.venv = venv
        self.log_path = log_path
        # The child process keeps its own copy of the log's file descriptor.
        with open(log_path, "w", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [str(python), str(WORKER), str(problem_path), str(check_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=thread_environment(),
            )
        ready = self._receive()
        self.environment: dict[str, str] = ready["environment"]

    def _receive(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            log = self.log_path.read_text(encoding="utf-8").strip()
            raise RuntimeError(
                f"neuroptica worker exited with code {code}. Its stderr:\n{log}\n"
                f"If neuroptica is not installed, run: {self.venv}/bin/pip install "
                "neuroptica"
            )
        message = json.loads(line)
        if "error" in message:
            raise RuntimeError(f"neuroptica worker failed: {message['error']}")
        return message

    def time_operations(self, calls: int) -> dict[str, dict[str, float]]:
        """Time neuroptica's operations in the worker; return s by operation, option."""
        self.process.stdin.write(f"time {calls}\n")
        self.process.stdin.flush()
        return self._receive()

    def close(self) -> None:
        """End the worker by closing its input, and wait for it."""
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        self.process.wait(timeout=60)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def print_report(
    config: PeerConfig,
    environment: str,
    worker_environment: dict[str, str],
    differences: dict[str, float],
    results: list[RowResult],
) -> None:
    """Print the set-up, the agreement check, the table and the verdict on the target."""
    print(
        f"N = {config.modes}, batch {config.batch}, complex128, ideal rectangular mesh; "
        f"median of {config.repeats} repeats, each the best of {config.calls} calls"
    )
    print(f"machine: {machine_description()}")
    print(f"ours: {environment}")
    theirs = ", ".join(f"{name} {value}" for name, value in worker_environment.items())
    print(f"neuroptica: {theirs}")
    print("agreement of neuroptica's mirrored mesh with ours (max |difference|):")
    for label, difference in differences.items():
        print(f"  {label}: {difference:.2e}")
    print()
    print(
        f"{'operation':40} {'neuroptica (ms)':>16} {'ours (ms)':>10} "
        f"{'speed-up':>9}  neuroptica option"
    )
    for result in results:
        print(
            f"{result.row.operation:40} {result.theirs * 1e3:16.2f} "
            f"{result.ours * 1e3:10.2f} {result.speed_up:9.2f}  {result.option}"
        )
    target = results[TARGET_ROW]
    verdict = "met" if target.speed_up >= GRADIENT_TARGET else "NOT met"
    if (config.modes, config.batch) != (FULL_RUN.modes, FULL_RUN.batch):
        verdict += (
            f" at this size; the target is set for N = {FULL_RUN.modes}, "
            f"batch {FULL_RUN.batch}"
        )
    print()
    print(
        f"target: full in situ gradient >= {GRADIENT_TARGET:g}x faster than "
        f"neuroptica's fastest option: {verdict} (speed-up {target.speed_up:.2f})"
    )


def run(config: PeerConfig, venv: Path) -> None:
    """Check both meshes against each other, time both packages in turn, and report."""
    neuroptica_python(venv)
    problem = build_problem(config.modes, config.batch, config.seed)
    with tempfile.TemporaryDirectory(prefix="peer-neuroptica-") as folder:
        folder_path = Path(folder)
        problem_path = folder_path / "problem.npz"
        check_path = folder_path / "check.npz"
        write_problem(problem, problem_path)
        logger.info("starting neuroptica's worker in %s", venv)
        with NeuropticaWorker(
            venv, problem_path, check_path, folder_path / "worker.log"
        ) as worker:
            differences = check_agreement(problem, check_path)
            theirs_runs, ours_runs = [], []
            with threadpool_limits(limits=1, user_api="blas"):
                for repeat in range(config.repeats):
                    if repeat % 2 == 0:
                        theirs_runs.append(worker.time_operations(config.calls))
                        ours_runs.append(time_ours(problem, config.calls, fields=True))
                    else:
                        ours_runs.append(time_ours(problem, config.calls, fields=True))
                        theirs_runs.append(worker.time_operations(config.calls))
                    logger.info("repeat %d of %d done", repeat + 1, config.repeats)
                environment = our_environment()
    print_report(
        config,
        environment,
        worker.environment,
        differences,
        summarise(ROWS, theirs_runs, ours_runs),
    )


def parse_config(argv: list[str] | None = None) -> tuple[PeerConfig, Path]:
    """Read the command line. ``--smoke`` changes the defaults of the other options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])

    parser.add_argument("--modes", type=int, help="number of modes N (default 64)")
    parser.add_argument("--batch", type=int, help="batch size (default 1024)")
    parser.add_argument(
        "--repeats",
        type=int,
        help="number of repeats, whose median is reported (default 5)",
    )
    parser.add_argument(
        "--calls",
        type=int,
        help="calls of each operation per repeat; the shortest is kept (default 3)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of phases and data")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="run a tiny case: N = 8, batch 16, 2 repeats, 1 call, unless set explicitly",
    )
    parser.add_argument(
        "--neuroptica-venv",
        type=Path,
        default=DEFAULT_VENV,
        help=f"virtual environment with neuroptica installed (default {DEFAULT_VENV})",
    )
    args = parser.parse_args(argv)

    defaults = SMOKE_RUN if args.smoke else FULL_RUN
    values = {}
    for name in ("modes", "batch", "repeats", "calls"):
        given = getattr(args, name)
        values[name] = getattr(defaults, name) if given is None else given

    try:
        config = PeerConfig(seed=args.seed, **values)
    except ValueError as error:
        parser.error(str(error))
    return config, args.neuroptica_venv


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config, venv = parse_config(argv)
    try:
        run(config, venv)
    except RuntimeError as error:
        raise SystemExit(f"error: {error}") from error


if __name__ == "__main__":
    main()
