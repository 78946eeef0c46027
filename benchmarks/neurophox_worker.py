"""Time neurophox's forward pass and autodiff gradient on a mesh given by the driver.

This script runs inside neurophox's own virtual environment and imports only the
standard library, numpy, TensorFlow and neurophox. ``benchmarks/peer_neurophox.py``
starts it, so the timings of both packages come from one run. Run the driver, not this
script.

Protocol: the worker loads the problem file (phases, inputs and targets written by the
driver), builds neurophox's numpy and TensorFlow meshes, writes their transfer matrices,
outputs and gradients to the check file, and prints one JSON line with its versions.
After that, each line ``time CALLS`` on stdin makes it time every operation ``CALLS``
times and print one JSON line with the shortest wall time of each in s. It exits at end
of input. Nothing else is written to stdout.

Mesh mapping (neurophox 0.1.0a4). neurophox propagates row vectors: ``transform(x)``
returns ``x @ M``. A mesh applies the diagonal phases γ at its inputs, then one layer of
MZIs after another. In the single-mode basis (``basis="sm"``) and the beamsplitter
convention (``hadamard=False``), the 2×2 block of one MZI in M is
``B · diag(e^{iθ}, 1) · B · diag(e^{iφ}, 1)``, with B = [[1, i], [i, 1]]/√2. For row
vectors this means light meets a coupler, θ on the top arm, a coupler and then φ on the
top output arm. As a column-vector transfer matrix the MZI is therefore the transpose of
ours, which has φ on the top input arm. neurophox's default Bloch basis puts ±θ/2 on the
two arms, which adds the phase e^{−iθ/2} to both outputs of every MZI, so the worker
uses the single-mode basis.

The worker builds the mirror image of our mesh, as for neuroptica: γ carries our output
phases ψ, and layer ℓ carries our column N − 1 − ℓ with the same θ and φ. Its
column-vector transfer matrix is Uᵀ, our mesh with light launched into the output ports,
and ``transform(x)`` returns ``x @ U``. neurophox's ``RM`` cannot be used as built: its
first layer has the MZIs on modes (0, 1), (2, 3), …, whereas our last column, the first
of the mirror, starts at mode 1 for even N. The worker therefore builds neurophox's
general ``MeshModel``, which ``RM`` specialises, with its own permutations. A layer
whose MZIs start at mode 1 is preceded by a cyclic shift of the modes by one and
followed by the inverse shift, as ``RM`` does for its odd layers. Each layer then runs
the same operations as an ``RM`` layer. For even N such a layer has a slot on modes
(N−1, 0), which the mask keeps at θ = φ = π, the identity in the single-mode basis,
again as in ``RM``. ``RM(N)`` with its own random phases is timed as well, to check that
the remapped mesh costs the same.

Precision. neurophox's TensorFlow layers take their dtypes from ``neurophox.config``
(complex64 and float32 by default). The worker sets them to complex128 and float64
before any other neurophox module is imported, so both packages compute in double
precision. Its numpy layers use complex128 by default.
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
import tensorflow as tf

# The driver sets OPENBLAS_NUM_THREADS and the like for numpy. TensorFlow has its own
# thread pools, limited here before it runs any operation.
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

# neurophox's modules copy these dtypes when they are imported, so they are set first.
import neurophox.config

neurophox.config.TF_COMPLEX = tf.complex128
neurophox.config.TF_FLOAT = tf.float64

from neurophox.config import SINGLEMODE
from neurophox.meshmodel import MeshModel
from neurophox.ml.linear import complex_mse
from neurophox.numpy import RMNumpy
from neurophox.numpy.generic import MeshNumpyLayer, MeshPhases
from neurophox.tensorflow import RM
from neurophox.tensorflow.generic import MeshLayer

# Labels of neurophox's options in the report.
TRANSFORM = "transform, layer built beforehand"
BUILD_AND_TRANSFORM = "new MeshNumpyLayer from the phases, then transform"
LAYER_CALL = "layer call (MeshLayer.transform is a tf.function)"
EAGER_TAPE = "GradientTape around the layer call, as LinearMultiModelRunner"
COMPILED_TAPE = "GradientTape inside one tf.function"


def identity_permutation(n_modes: int) -> np.ndarray:
    """Return the permutation that keeps every mode in place."""
    return np.arange(n_modes)


def shift_permutation(n_modes: int, shift: int) -> np.ndarray:
    """Return neurophox's index array that moves mode ``k + shift`` to position ``k``.

    neurophox applies a permutation ``p`` as ``x.take(p, axis=-1)``, so position k of
    the result contains mode ``p[k]``.
    """
    return np.roll(np.arange(n_modes), -shift)


class MirroredMesh:
    """neurophox's numpy and TensorFlow meshes mirroring ours, with our phases.

    Args:
        problem: arrays of the problem file: ``n_modes``, ``theta``, ``phi``, ``psi``
            (rad), ``column_lengths`` and ``top_modes`` of our mesh.

    Raises:
        ValueError: if N is odd, or if a column's MZIs are not on consecutive pairs
            starting at mode 0 or 1, as in a rectangular mesh.

    Attributes:
        model: neurophox's ``MeshModel`` of the mirrored mesh.
        numpy_layer: ``MeshNumpyLayer`` with our phases.
        tf_layer: ``MeshLayer`` (TensorFlow) with our phases.
        slots: for every layer ℓ, the indices of our MZIs held by its first slots.
    """

    def __init__(self, problem: dict[str, np.ndarray]) -> None:
        n_modes = int(problem["n_modes"])
        if n_modes % 2:
            # NOTE: neurophox 0.1.0a4 pads the phases of odd N with float32 zeros in
            # MeshParamTensorflow.single_mode_arrangement, which fails in float64.
            raise ValueError(
                f"n_modes {n_modes} is invalid; the neurophox comparison needs an even "
                "number of modes"
            )
        self.n_modes = n_modes
        self.theta, self.phi, self.psi = (
            problem["theta"],
            problem["phi"],
            problem["psi"],
        )

        bounds = np.cumsum(np.concatenate([[0], problem["column_lengths"]]))
        top_modes = problem["top_modes"]
        columns = [np.arange(start, stop) for start, stop in itertools.pairwise(bounds)]
        # Layer ℓ of the mirror is our column N_columns − 1 − ℓ.
        self.slots = columns[::-1]
        shifted = [self._starts_at_mode_one(top_modes[mzis]) for mzis in self.slots]

        self.model = MeshModel(
            self._permutations(shifted),
            hadamard=False,
            num_tunable=np.array([len(mzis) for mzis in self.slots]),
            theta_init_name="random_theta",
            phi_init_name="random_phi",
            gamma_init_name="random_gamma",
            basis=SINGLEMODE,
        )
        theta, phi = self.slot_phases()
        self.numpy_layer = self.build_numpy_layer()
        self.tf_layer = MeshLayer(self.model)
        for variable, value in zip(
            (self.tf_layer.theta, self.tf_layer.phi, self.tf_layer.gamma),
            (theta, phi, self.psi),
        ):
            if variable.dtype != tf.float64:
                raise RuntimeError(
                    f"neurophox's phase variable {variable.name} is {variable.dtype}; "
                    "expected float64 after setting neurophox.config.TF_FLOAT"
                )
            # neurophox keeps γ as a (1, N) row that broadcasts over the batch.
            variable.assign(np.reshape(value, variable.shape))

    def _starts_at_mode_one(self, tops: np.ndarray) -> bool:
        """Return whether a column's MZIs start at mode 1, after checking that they fit
        one neurophox layer."""
        if len(tops) == 0:
            return False
        start = int(tops[0])
        expected = np.arange(start, start + 2 * len(tops), 2)
        if start not in (0, 1) or not np.array_equal(tops, expected):
            raise ValueError(
                f"MZI column with top modes {tops.tolist()} is invalid for neurophox; "
                "a layer has MZIs on consecutive pairs starting at mode 0 or 1"
            )
        return start == 1

    def _permutations(self, shifted: list[bool]) -> np.ndarray:
        """Return neurophox's ``perm_idx``: the permutation before every layer and after
        the last one, so that the modes are shifted by one exactly for the layers in
        ``shifted`` and are in order at the outputs."""
        n_modes = self.n_modes
        states = [False, *shifted, False]
        permutations = []
        for before, after in itertools.pairwise(states):
            if before == after:
                permutations.append(identity_permutation(n_modes))
            else:
                permutations.append(shift_permutation(n_modes, 1 if after else -1))
        return np.array(permutations, dtype=np.int32)

    def slot_phases(
        self, theta: np.ndarray | None = None, phi: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Arrange our θ and φ (rad) as neurophox's ``(layers, N/2)`` arrays.

        Masked slots get 0; neurophox replaces them by π.
        """
        theta = self.theta if theta is None else theta
        phi = self.phi if phi is None else phi
        shape = (len(self.slots), self.n_modes // 2)
        theta_slots, phi_slots = np.zeros(shape), np.zeros(shape)
        for layer, mzis in enumerate(self.slots):
            theta_slots[layer, : len(mzis)] = theta[mzis]
            phi_slots[layer, : len(mzis)] = phi[mzis]
        return theta_slots, phi_slots

    def build_numpy_layer(self) -> MeshNumpyLayer:
        """Build neurophox's numpy mesh with our phases, composing its layers."""
        theta, phi = self.slot_phases()
        phases = MeshPhases(
            theta=theta,
            phi=phi,
            gamma=self.psi,
            mask=self.model.mask,
            basis=SINGLEMODE,
            hadamard=False,
        )
        return MeshNumpyLayer(self.model, phases)

    def gradient_vector(self, gradients: list[tf.Tensor], scale: float) -> np.ndarray:
        """Arrange neurophox's gradients of θ, φ and γ in our (θ, φ, ψ) order, times
        ``scale``."""
        theta_slots, phi_slots, gamma = (np.asarray(g) for g in gradients)
        gamma = gamma.ravel()
        theta = np.empty_like(self.theta)
        phi = np.empty_like(self.phi)
        for layer, mzis in enumerate(self.slots):
            theta[mzis] = theta_slots[layer, : len(mzis)]
            phi[mzis] = phi_slots[layer, : len(mzis)]
        return scale * np.concatenate([theta, phi, gamma])


def gradient_function(
    layer: MeshLayer, compiled: bool
) -> Callable[[tf.Tensor, tf.Tensor], list[tf.Tensor]]:
    """Return a function computing neurophox's gradient of its complex MSE.

    The function runs the layer on a batch under ``tf.GradientTape`` and returns the
    gradients of ``complex_mse`` summed over the batch with respect to θ, φ and γ, as
    neurophox's ``LinearMultiModelRunner.iterate`` does before its optimizer step.
    ``complex_mse`` is ``|y − t|²/(2N)`` per example.

    Args:
        layer: the TensorFlow mesh.
        compiled: wrap the whole step in ``tf.function`` instead of running the tape
            eagerly.
    """
    variables = [layer.theta, layer.phi, layer.gamma]

    def step(x: tf.Tensor, targets: tf.Tensor) -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            loss = complex_mse(targets, layer(x))
        return tape.gradient(loss, variables)

    return tf.function(step) if compiled else step


class Operations:
    """Every timed operation of neurophox, on the mirrored mesh and on ``RM(N)``.

    Args:
        mesh: the mirrored mesh.
        x: inputs ``(batch, modes)``, complex128.
        targets: targets ``(batch, modes)``, complex128.
    """

    def __init__(self, mesh: MirroredMesh, x: np.ndarray, targets: np.ndarray) -> None:
        self.mesh = mesh
        self.x = x
        self.x_tf = tf.constant(x)
        self.targets_tf = tf.constant(targets)
        self.eager = gradient_function(mesh.tf_layer, compiled=False)
        self.compiled = gradient_function(mesh.tf_layer, compiled=True)
        # neurophox's own rectangular mesh with its random phases (Bloch basis, Haar
        # initialisation), for the cost check only.
        n_modes = mesh.n_modes
        self.rm_numpy = RMNumpy(n_modes)
        self.rm_tf = RM(n_modes)
        self.rm_eager = gradient_function(self.rm_tf, compiled=False)

    def forward_tf(self, layer: MeshLayer) -> np.ndarray:
        """Run a TensorFlow mesh on the inputs and return the outputs as numpy."""
        return layer(self.x_tf).numpy()

    def gradient(
        self, step: Callable[[tf.Tensor, tf.Tensor], list[tf.Tensor]]
    ) -> list[np.ndarray]:
        """Run one gradient step and return the gradients as numpy arrays."""
        return [g.numpy() for g in step(self.x_tf, self.targets_tf)]

    def warm_up(self) -> None:
        """Trace every tf.function once, so that no timed call pays for tracing."""
        self.forward_tf(self.mesh.tf_layer)
        self.gradient(self.eager)
        self.gradient(self.compiled)
        self.forward_tf(self.rm_tf)
        self.gradient(self.rm_eager)

    def time_all(self, calls: int) -> dict[str, dict[str, float]]:
        """Time every operation and option, best of ``calls`` calls each, in s.

        Returns:
            For each operation ("forward_numpy", "forward_tf", "gradient", and
            "rm_as_built" for ``RM(N)``), the time of each option, keyed by its label.
        """
        mesh = self.mesh
        forward_numpy = {
            TRANSFORM: best_time(lambda: mesh.numpy_layer.transform(self.x), calls),
            BUILD_AND_TRANSFORM: best_time(
                lambda: mesh.build_numpy_layer().transform(self.x), calls
            ),
        }
        forward_tf = {
            LAYER_CALL: best_time(
                functools.partial(self.forward_tf, mesh.tf_layer), calls
            )
        }
        gradient = {
            EAGER_TAPE: best_time(functools.partial(self.gradient, self.eager), calls),
            COMPILED_TAPE: best_time(
                functools.partial(self.gradient, self.compiled), calls
            ),
        }
        rm_as_built = {
            f"numpy {TRANSFORM}": best_time(
                lambda: self.rm_numpy.transform(self.x), calls
            ),
            f"TensorFlow {LAYER_CALL}": best_time(
                functools.partial(self.forward_tf, self.rm_tf), calls
            ),
            f"gradient, {EAGER_TAPE}": best_time(
                functools.partial(self.gradient, self.rm_eager), calls
            ),
        }
        return {
            "forward_numpy": forward_numpy,
            "forward_tf": forward_tf,
            "gradient": gradient,
            "rm_as_built": rm_as_built,
        }


def best_time(function: Callable[[], object], calls: int) -> float:
    """Return the shortest wall time in s of ``calls`` calls of ``function``."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def write_check(operations: Operations, path: str) -> None:
    """Save neurophox's transfer matrices, outputs ``(batch, modes)`` and gradients.

    The gradients are converted to our loss, the batch mean of ½|y − t|²: neurophox's
    summed ``complex_mse`` is B/N times that loss, so they are multiplied by N/B.
    """
    mesh = operations.mesh
    n_modes = mesh.n_modes
    identity = np.eye(n_modes, dtype=np.complex128)
    scale = n_modes / operations.x.shape[0]
    arrays = {
        "transfer_matrix_numpy": mesh.numpy_layer.transform(identity),
        "transfer_matrix_tf": mesh.tf_layer(tf.constant(identity)).numpy(),
        "outputs_numpy": mesh.numpy_layer.transform(operations.x),
        "outputs_tf": operations.forward_tf(mesh.tf_layer),
        "gradient_eager": mesh.gradient_vector(
            operations.gradient(operations.eager), scale
        ),
        "gradient_compiled": mesh.gradient_vector(
            operations.gradient(operations.compiled), scale
        ),
    }
    np.savez(path, **arrays)


def environment_report() -> dict[str, str]:
    """Return the versions of Python, numpy, TensorFlow, neurophox, and TF threads."""
    threads = (
        f"{tf.config.threading.get_intra_op_parallelism_threads()} intra-op, "
        f"{tf.config.threading.get_inter_op_parallelism_threads()} inter-op"
    )
    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "tensorflow threads": threads,
        "neurophox": importlib.metadata.version("neurophox"),
    }


def send(channel: TextIO, message: dict) -> None:
    """Write one JSON line to the driver and flush it."""
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem", help="problem file (.npz) written by the driver")
    parser.add_argument("check", help="file (.npz) to write neurophox's results to")
    args = parser.parse_args()

    # Only the protocol's JSON lines may reach the driver through stdout.
    channel = sys.stdout
    sys.stdout = sys.stderr

    with np.load(args.problem) as data:
        problem = {name: data[name] for name in data.files}
    try:
        mesh = MirroredMesh(problem)
    except (ValueError, RuntimeError) as error:
        send(channel, {"error": str(error)})
        return
    operations = Operations(
        mesh,
        np.ascontiguousarray(problem["x"]),
        np.ascontiguousarray(problem["targets"]),
    )
    operations.warm_up()
    write_check(operations, args.check)
    send(channel, {"ready": True, "environment": environment_report()})

    for line in sys.stdin:
        words = line.split()
        if len(words) != 2 or words[0] != "time" or not words[1].isdigit():
            send(channel, {"error": f"request {line.strip()!r} is invalid"})
            continue
        send(channel, operations.time_all(int(words[1])))


if __name__ == "__main__":
    main()
