"""Compare neurophox's forward pass and autodiff gradient with ours on the same mesh.

Both packages get the same rectangular mesh (the same θ, φ and output phases of one
ideal chip), the same batch of complex inputs and the same complex mean-squared-error
targets. neurophox runs in its own virtual environment, in a worker process
(``benchmarks/neurophox_worker.py``) that reports its times as JSON lines on stdout.
Ours runs in this process. The two sides take turns, one repeat each, and the side that
goes first alternates, so machine noise affects both. Every time is the best of
``--calls`` calls, every figure is the median over ``--repeats`` repeats, and the
speed-up is neurophox's time divided by ours, computed per repeat. Both processes run on
one thread: OPENBLAS_NUM_THREADS, MKL_NUM_THREADS and OMP_NUM_THREADS are 1 in both
environments, threadpoolctl also limits our BLAS, and the worker sets TensorFlow's
intra-op and inter-op thread pools to 1.

neurophox's MZI has its external phase on the output arm and ours on the input arm, so
its mesh is built as the mirror image of ours, in neurophox's single-mode basis and in
complex128 (see the worker's docstring). The driver checks three things before any
timing, for neurophox's numpy and TensorFlow meshes. Its transfer matrix must equal our
U, because its ``transform(x)`` is ``x @ U``. Its outputs must equal our mesh's outputs
for light launched into the output ports. Its gradients, eager and compiled, must equal
−Im(a·b) computed from our fields. The run stops if a difference exceeds 1e-12 relative
to the largest value.

What is timed:
    forward pass, outputs only. neurophox numpy: ``MeshNumpyLayer.transform(x)``, one
        product per layer with that layer's N×N matrix, which is composed when the
        layer is built. A second option builds the layer from the phases first.
        neurophox TensorFlow: the layer call, which composes every layer's diagonal and
        off-diagonal terms from the phase variables and applies them. Ours:
        ``photonic.sweep.propagate`` on a new device: U composed from the cells, then
        one product.
    gradient of the batch loss with respect to every phase. neurophox: its
        ``complex_mse`` under ``tf.GradientTape`` through the layer, as its
        ``LinearMultiModelRunner`` trains, either eagerly or inside one ``tf.function``.
        Ours: ``photonic.reference.exact_gradient`` (adjoint fields, two passes) and
        ``photonic.insitu.measure_gradient`` (the three optical passes with monitor
        powers on a one-layer ``PhotonicNetwork``).

The gradient rows use neurophox's faster option by median, and one row repeats the eager
tape. The report also gives the times of neurophox's own ``RM(N)`` with its random
phases, which show whether the remapped mesh costs what ``RM`` costs.

The CI does not run this script, because it needs TensorFlow and neurophox installed
from PyPI into ``benchmarks/.venv-neurophox``:

    python3 -m venv benchmarks/.venv-neurophox
    benchmarks/.venv-neurophox/bin/pip install "numpy==1.23.5" \\
        "tensorflow-cpu==2.15.*" neurophox

Usage:
    python benchmarks/peer_neurophox.py            # N = 64, batch 1024, 5 repeats
    python benchmarks/peer_neurophox.py --smoke    # N = 8, batch 16, 1 repeat
"""

from __future__ import annotations

import os

# BLAS reads these once, when it loads, so they are set before numpy is imported. The
# worker inherits them.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
for _variable in THREAD_VARIABLES:
    os.environ[_variable] = "1"

import argparse
import json
import logging
import statistics
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
DEFAULT_VENV = BENCHMARKS / ".venv-neurophox"
WORKER = BENCHMARKS / "neurophox_worker.py"
INSTALL_COMMAND = 'pip install "numpy==1.23.5" "tensorflow-cpu==2.15.*" neurophox'

# Relative agreement required between neurophox and our mesh before timing.
AGREEMENT_TOLERANCE = 1e-12

# Option labels of the worker (benchmarks/neurophox_worker.py).
TRANSFORM = "transform, layer built beforehand"
BUILD_AND_TRANSFORM = "new MeshNumpyLayer from the phases, then transform"
EAGER_TAPE = "GradientTape around the layer call, as LinearMultiModelRunner"


@dataclass(frozen=True)
class PeerConfig:
    """Size and repetition of one comparison run.

    Attributes:
        modes: number of modes N of the rectangular mesh, even.
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
        if self.modes % 2:
            raise ValueError(
                f"modes {self.modes} is invalid; it must be even, because neurophox "
                "0.1.0a4 cannot build an odd mesh in float64 with TensorFlow"
            )


FULL_RUN = PeerConfig()
SMOKE_RUN = PeerConfig(modes=8, batch=16, repeats=1, calls=1)


ROWS = (
    Row("forward pass, outputs only (numpy)", "forward_numpy", "forward", TRANSFORM),
    Row(
        "forward pass, outputs only (numpy)",
        "forward_numpy",
        "forward",
        BUILD_AND_TRANSFORM,
    ),
    Row("forward pass, outputs only (TensorFlow)", "forward_tf", "forward"),
    Row("gradient; ours exact_gradient (2 passes)", "gradient", "exact_gradient"),
    Row("gradient; ours measure_gradient (3 passes)", "gradient", "measured_gradient"),
    Row(
        "gradient; ours measure_gradient (3 passes)",
        "gradient",
        "measured_gradient",
        EAGER_TAPE,
    ),
)


def mirrored_reference(problem: Problem) -> dict[str, np.ndarray]:
    """Compute, with our mesh, what neurophox's mirrored mesh must return.

    neurophox's mesh is ours with light launched into the output ports, and it
    propagates row vectors, so its transfer matrix (``transform`` of the identity) is U
    and its outputs are ``x @ U``. The gradient of the batch mean of ½|y − t|² is
    −Im(a·b) summed over the batch, with a the field of x travelling backward through
    our mesh and b the field of the adjoint source conj(y − t)/batch travelling forward,
    both taken at the same point of every phase shifter.
    """
    device = problem.device
    outputs, backward_fields = device.backward(problem.x, record=True)
    _, delta = ComplexMSE().value_and_adjoint(outputs, problem.targets)
    _, forward_fields = device.forward(delta, record=True)
    gradient = -np.imag(
        np.sum(backward_fields.stacked() * forward_fields.stacked(), axis=0)
    )
    return {
        "transfer_matrix": device.matrix(),
        "outputs": outputs,
        "gradient": gradient,
    }


def check_agreement(problem: Problem, check_path: Path) -> dict[str, float]:
    """Compare neurophox's saved results with ours; return each max |difference|.

    Raises:
        RuntimeError: if a difference exceeds ``AGREEMENT_TOLERANCE`` times the largest
            value of the quantity, which means the two meshes differ.
    """
    expected = mirrored_reference(problem)
    with np.load(check_path) as saved:
        neurophox = {name: saved[name] for name in saved.files}

    pairs = {
        "transfer matrix (numpy)": ("transfer_matrix_numpy", "transfer_matrix"),
        "transfer matrix (TensorFlow)": ("transfer_matrix_tf", "transfer_matrix"),
        "outputs (numpy)": ("outputs_numpy", "outputs"),
        "outputs (TensorFlow)": ("outputs_tf", "outputs"),
        "gradient (eager tape)": ("gradient_eager", "gradient"),
        "gradient (tape in tf.function)": ("gradient_compiled", "gradient"),
    }
    differences = {}
    for label, (theirs, ours) in pairs.items():
        difference = float(np.max(np.abs(neurophox[theirs] - expected[ours])))
        scale = float(np.max(np.abs(expected[ours])))
        if difference > AGREEMENT_TOLERANCE * max(scale, 1e-300):
            raise RuntimeError(
                f"neurophox's {label} differs from ours by {difference:.3e} "
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
    # TensorFlow's start-up messages would fill the worker's log.
    environment["TF_CPP_MIN_LOG_LEVEL"] = "2"
    environment.pop("PYTHONPATH", None)
    environment.pop("PYTHONHOME", None)
    return environment


def neurophox_python(venv: Path) -> Path:
    """Return the Python interpreter of neurophox's virtual environment.

    Raises:
        SystemExit: if the virtual environment is missing, with the command that
            creates it.
    """
    python = venv / "bin" / "python"
    if not python.exists():
        raise SystemExit(
            f"neurophox's virtual environment is missing: {python} not found. "
            f"Create it with:\n  python3 -m venv {venv} && {venv}/bin/{INSTALL_COMMAND}"
        )
    return python


class NeurophoxWorker:
    """neurophox's worker process, started with its virtual environment's Python.

    Args:
        venv: neurophox's virtual environment.
        problem_path: problem file written by ``write_problem``.
        check_path: file the worker writes its results to, for ``check_agreement``.
        log_path: file that receives the worker's stderr.

    Raises:
        SystemExit: if the virtual environment is missing.
        RuntimeError: if the worker exits or reports an error before it is ready.
    """

    def __init__(
        self, venv: Path, problem_path: Path, check_path: Path, log_path: Path
    ) -> None:
        python = neurophox_python(venv)
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
                f"neurophox worker exited with code {code}. Its stderr:\n{log}\n"
                f"If neurophox is not installed, run: {self.venv}/bin/{INSTALL_COMMAND}"
            )
        message = json.loads(line)
        if "error" in message:
            raise RuntimeError(f"neurophox worker failed: {message['error']}")
        return message

    def time_operations(self, calls: int) -> dict[str, dict[str, float]]:
        """Time neurophox's operations in the worker.

        Returns:
            The times in s, keyed by operation and option.
        """
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
    rm_as_built: dict[str, float],
) -> None:
    """Print the set-up, the agreement check, the table and the cost check of ``RM``."""
    print(
        f"N = {config.modes}, batch {config.batch}, complex128, "
        "ideal rectangular mesh; "
        f"median of {config.repeats} repeats, each the best of {config.calls} calls"
    )
    print(f"machine: {machine_description()}")
    print(f"ours: {environment}")
    theirs = ", ".join(f"{name} {value}" for name, value in worker_environment.items())
    print(f"neurophox: {theirs}")
    print("agreement of neurophox's mirrored mesh with ours (max |difference|):")
    for label, difference in differences.items():
        print(f"  {label}: {difference:.2e}")
    print()
    print(
        f"{'operation':42} {'neurophox (ms)':>15} {'ours (ms)':>10} "
        f"{'speed-up':>9}  neurophox option"
    )
    for result in results:
        print(
            f"{result.row.operation:42} {result.theirs * 1e3:15.2f} "
            f"{result.ours * 1e3:10.2f} {result.speed_up:9.2f}  {result.option}"
        )
    print()
    print(f"neurophox RM({config.modes}) as built, with its own random phases (ms):")
    for label, seconds in rm_as_built.items():
        print(f"  {label}: {seconds * 1e3:.2f}")


def run(config: PeerConfig, venv: Path) -> None:
    """Check both meshes against each other, time both packages in turn, and report."""
    neurophox_python(venv)
    problem = build_problem(config.modes, config.batch, config.seed)
    with tempfile.TemporaryDirectory(prefix="peer-neurophox-") as folder:
        folder_path = Path(folder)
        problem_path = folder_path / "problem.npz"
        check_path = folder_path / "check.npz"
        write_problem(problem, problem_path)
        logger.info("starting neurophox's worker in %s", venv)
        with NeurophoxWorker(
            venv, problem_path, check_path, folder_path / "worker.log"
        ) as worker:
            differences = check_agreement(problem, check_path)
            theirs_runs, ours_runs = [], []
            with threadpool_limits(limits=1, user_api="blas"):
                for repeat in range(config.repeats):
                    if repeat % 2 == 0:
                        theirs_runs.append(worker.time_operations(config.calls))
                        ours_runs.append(time_ours(problem, config.calls))
                    else:
                        ours_runs.append(time_ours(problem, config.calls))
                        theirs_runs.append(worker.time_operations(config.calls))
                    logger.info("repeat %d of %d done", repeat + 1, config.repeats)
                environment = our_environment()
    rm_as_built = {
        label: statistics.median(run["rm_as_built"][label] for run in theirs_runs)
        for label in theirs_runs[0]["rm_as_built"]
    }
    print_report(
        config,
        environment,
        worker.environment,
        differences,
        summarise(ROWS, theirs_runs, ours_runs),
        rm_as_built,
    )


def parse_config(argv: list[str] | None = None) -> tuple[PeerConfig, Path]:
    """Read the command line. ``--smoke`` changes the defaults of the other options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])

    parser.add_argument(
        "--modes", type=int, help="number of modes N, even (default 64)"
    )
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
        help="run a tiny case: N = 8, batch 16, 1 repeat, 1 call, unless set otherwise",
    )
    parser.add_argument(
        "--venv",
        type=Path,
        default=DEFAULT_VENV,
        help=f"virtual environment with neurophox installed (default {DEFAULT_VENV})",
    )
    args = parser.parse_args(argv)

    defaults = SMOKE_RUN if args.smoke else FULL_RUN
    values = {}
    for name in ("modes", "batch", "repeats", "calls"):
        override = getattr(args, name)
        values[name] = getattr(defaults, name) if override is None else override

    try:
        config = PeerConfig(seed=args.seed, **values)
    except ValueError as error:
        parser.error(str(error))
    return config, args.venv


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config, venv = parse_config(argv)
    try:
        run(config, venv)
    except RuntimeError as error:
        raise SystemExit(f"error: {error}") from error


if __name__ == "__main__":
    main()
