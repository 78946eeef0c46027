"""Time neuroptica's forward pass and in situ gradient on a mesh given by the driver.

This script runs inside neuroptica's own virtual environment and imports only the
standard library, numpy and neuroptica. ``benchmarks/peer_neuroptica.py`` starts it,
so the timings of both packages come from one run. Run the driver, not this script.

Protocol: the worker loads the problem file (phases, inputs and targets written by the
driver), builds the mesh, writes neuroptica's transfer matrix, outputs and gradients to
the check file, and prints one JSON line with its versions. After that, each line
``time CALLS`` on stdin makes it time every operation ``CALLS`` times and print one JSON
line with the shortest wall time of each in s. It exits at end of input. Nothing else is
written to stdout.

Mesh mapping. neuroptica's MZI (``neuroptica.components.MZI``, version 0.1.0) applies
``diag(e^{iφ}, 1) · B · diag(e^{iθ}, 1) · B``, with the external phase φ on the top
output arm, and its ``ClementsLayer`` puts one column of phase shifters at the inputs.
Our MZI applies ``B · diag(e^{iθ}, 1) · B · diag(e^{iφ}, 1)``, with φ on the top input
arm, and our mesh ends with output phase shifters ψ. Both couplers B are symmetric, so
neuroptica's MZI with our (θ, φ) is exactly the transpose of ours. The worker therefore
builds neuroptica's mesh from its own layer classes in mirror order: a
``PhaseShifterLayer`` with our ψ, then one ``MZILayer`` for each of our columns from
the last to the first, every MZI with our θ and φ. Its transfer matrix is Uᵀ, our mesh
with light launched into the output ports, which is the same device by reciprocity.
neuroptica's ``ClementsLayer`` cannot be used as built: for even N its first MZI column
starts at mode 0, whereas the mirror of our last column starts at mode 1.
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import itertools
import json
import sys
import time
from collections.abc import Callable
from typing import TextIO

import numpy as np
from neuroptica.component_layers import MZILayer, OpticalMesh, PhaseShifterLayer
from neuroptica.components import MZI, PhaseShifter
from neuroptica.layers import ClementsLayer
from neuroptica.losses import MeanSquaredError
from neuroptica.models import Sequential

# Options of neuroptica's gradient step, named as in InSituAdam.fit. The first pair is
# that method's default.
GRADIENT_OPTIONS: tuple[tuple[bool, bool], ...] = (
    (False, False),
    (False, True),
    (True, False),
    (True, True),
)


def option_label(cache_fields: bool, use_partial_vectors: bool) -> str:
    """Name a combination of neuroptica's field options for the report."""
    return f"cache_fields={cache_fields}, use_partial_vectors={use_partial_vectors}"


class MirroredMesh:
    """neuroptica's mesh mirroring ours, with the MZIs and phase shifters in our order.

    Attributes:
        layer: a ``ClementsLayer`` whose ``mesh`` is replaced by the mirrored mesh, so
            its ``forward_pass`` and ``backward_pass`` act on that mesh.
        model: a one-layer ``Sequential`` model around ``layer``.
        mzis: neuroptica's MZI objects in our MZI order (column by column, by top mode).
        output_shifters: neuroptica's phase shifters carrying our output phases ψ.
    """

    def __init__(self, problem: dict[str, np.ndarray]) -> None:
        n_modes = int(problem["n_modes"])
        theta, phi, psi = problem["theta"], problem["phi"], problem["psi"]
        bounds = np.cumsum(np.concatenate([[0], problem["column_lengths"]]))
        top_modes = problem["top_modes"]

        columns: list[list[MZI]] = []
        for start, stop in itertools.pairwise(bounds):
            columns.append(
                [
                    MZI(int(top_modes[i]), int(top_modes[i]) + 1, theta[i], phi[i])
                    for i in range(start, stop)
                ]
            )
        self.mzis = [mzi for column in columns for mzi in column]
        self.output_shifters = [PhaseShifter(m, psi[m]) for m in range(n_modes)]

        layers = [PhaseShifterLayer(n_modes, self.output_shifters)]
        # A column without MZIs (the second column when N = 2) is the identity, and
        # neuroptica's MZILayer cannot propagate fields through an empty column.
        layers += [MZILayer(n_modes, column) for column in reversed(columns) if column]
        # ClementsLayer builds a random mesh first; the mirrored mesh replaces it.
        self.layer = ClementsLayer(n_modes)
        self.layer.mesh = OpticalMesh(n_modes, layers)
        self.model = Sequential([self.layer])

    def gradient_vector(self, gradients: dict) -> np.ndarray:
        """Arrange neuroptica's per-component batch-mean gradients in our (θ, φ, ψ) order."""
        theta = [gradients[mzi][0] for mzi in self.mzis]
        phi = [gradients[mzi][1] for mzi in self.mzis]
        psi = [gradients[shifter][0] for shifter in self.output_shifters]
        return np.array(theta + phi + psi)


def gradient_step(
    mesh: MirroredMesh,
    x: np.ndarray,
    targets: np.ndarray,
    cache_fields: bool,
    use_partial_vectors: bool,
) -> dict:
    """Run one in situ gradient step of neuroptica without the parameter update.

    This follows the body of ``InSituAdam.fit`` for one batch: forward pass, loss and its
    derivative, backward pass, ``OpticalMesh.compute_gradients`` from the forward and
    adjoint fields, and the mean of every component's gradient over the batch.

    Args:
        mesh: the mirrored mesh.
        x: input fields, ``(modes, batch)`` as neuroptica expects.
        targets: target fields, ``(modes, batch)``.
        cache_fields: neuroptica option: keep the fields of the forward and backward
            passes for the gradient instead of propagating again.
        use_partial_vectors: neuroptica option: propagate each MZI column as 2-vectors
            per mode instead of as dense N×N partial transfer matrices.

    Returns:
        The batch-mean gradient of every MZI (θ, φ) and phase shifter, keyed by component.
    """
    outputs = mesh.model.forward_pass(
        x, cache_fields=cache_fields, use_partial_vectors=use_partial_vectors
    )
    # InSituAdam.fit computes the batch loss for its progress bar, so the step keeps it.
    np.sum(MeanSquaredError.L(outputs, targets))
    delta = MeanSquaredError.dL(outputs, targets)
    mesh.model.backward_pass(
        delta, cache_fields=cache_fields, use_partial_vectors=use_partial_vectors
    )
    per_sample = mesh.layer.mesh.compute_gradients(
        mesh.layer.input_prev,
        delta,
        cache_fields=cache_fields,
        use_partial_vectors=use_partial_vectors,
    )
    return {
        component: np.mean(values, axis=-1) for component, values in per_sample.items()
    }


def best_time(function: Callable[[], object], calls: int) -> float:
    """Return the shortest wall time in s of ``calls`` calls of ``function``.

    One untimed call comes first, so compiling or loading code is not timed.
    """
    function()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def time_operations(
    mesh: MirroredMesh, x: np.ndarray, targets: np.ndarray, calls: int
) -> dict[str, dict[str, float]]:
    """Time every operation and option of neuroptica, best of ``calls`` calls each, in s.

    Returns:
        For each operation ("forward", "forward_fields", "gradient"), the time of each
        option combination, keyed by its label.
    """
    forward = {
        "transfer matrix, then one product": best_time(
            lambda: mesh.layer.forward_pass(x), calls
        )
    }
    forward_fields = {}
    for partial in (False, True):
        label = f"cache_fields=True, use_partial_vectors={partial}"
        forward_fields[label] = best_time(
            functools.partial(
                mesh.layer.forward_pass,
                x,
                cache_fields=True,
                use_partial_vectors=partial,
            ),
            calls,
        )
    gradient = {}
    for cache, partial in GRADIENT_OPTIONS:
        gradient[option_label(cache, partial)] = best_time(
            functools.partial(gradient_step, mesh, x, targets, cache, partial), calls
        )
    return {"forward": forward, "forward_fields": forward_fields, "gradient": gradient}


def write_check(
    mesh: MirroredMesh, x: np.ndarray, targets: np.ndarray, path: str
) -> None:
    """Save neuroptica's transfer matrix, outputs ``(batch, modes)`` and gradients.

    ``gradient_<i>`` is the gradient in our (θ, φ, ψ) order with the options named by
    ``gradient_options[i]``.
    """
    arrays = {
        "transfer_matrix": mesh.layer.mesh.get_transfer_matrix(),
        "outputs": mesh.layer.forward_pass(x).T,
    }
    labels = []
    for index, (cache, partial) in enumerate(GRADIENT_OPTIONS):
        step = gradient_step(mesh, x, targets, cache, partial)
        arrays[f"gradient_{index}"] = mesh.gradient_vector(step)
        labels.append(option_label(cache, partial))
    arrays["gradient_options"] = np.array(labels)
    np.savez(path, **arrays)


def environment_report() -> dict[str, str]:
    """Return the versions of Python, numpy, its BLAS, numba and neuroptica."""
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "blas": f"{blas.get('name')} {blas.get('version')}",
        "numba": importlib.metadata.version("numba"),
        "neuroptica": importlib.metadata.version("neuroptica"),
    }


def send(channel: TextIO, message: dict) -> None:
    """Write one JSON line to the driver and flush it."""
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem", help="problem file (.npz) written by the driver")
    parser.add_argument("check", help="file (.npz) to write neuroptica's results to")
    args = parser.parse_args()

    # Only the protocol's JSON lines may reach the driver through stdout.
    channel = sys.stdout
    sys.stdout = sys.stderr

    with np.load(args.problem) as data:
        problem = {name: data[name] for name in data.files}
    x = np.ascontiguousarray(problem["x"].T)
    targets = np.ascontiguousarray(problem["targets"].T)
    mesh = MirroredMesh(problem)
    write_check(mesh, x, targets, args.check)
    send(channel, {"ready": True, "environment": environment_report()})

    for line in sys.stdin:
        words = line.split()
        if len(words) != 2 or words[0] != "time" or not words[1].isdigit():
            send(channel, {"error": f"request {line.strip()!r} is invalid"})
            continue
        send(channel, time_operations(mesh, x, targets, int(words[1])))


if __name__ == "__main__":
    main()
