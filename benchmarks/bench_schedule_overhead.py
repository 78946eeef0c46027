"""Wall-time overhead of running every training step through the SimPy schedule.

Times one epoch of the default experiment (moons, three 4-port meshes, bench preset) with
the trainer, which runs each optical pass from the SimPy model's callbacks, against the same
physics run pass by pass without the scheduler. Both sides compute the same in situ
gradients, exact reference gradients and optimizer updates. Reports the median ratio over
``--repeats`` alternating runs.

Usage:
    python benchmarks/bench_schedule_overhead.py [--repeats 5] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from experiments.config import ExperimentConfig
from experiments.train import Trainer, build_network, prepare
from photonic.encoding import AmplitudeEncoder
from photonic.insitu import InSituStep, pass_order, run_pass
from photonic.reference import exact_gradient, gradient_error, programmed_gradients


def physics_only_epoch(trainer: Trainer, x: np.ndarray, labels: np.ndarray) -> None:
    """Run one epoch with the trainer's physics and updates but no SimPy model."""
    network = trainer.network
    order = trainer.rng.permutation(len(x))
    batch = trainer.config.training.batch_size
    for start in range(0, len(x), batch):
        rows = order[start : start + batch]
        step = InSituStep(network, x[rows], labels[rows])
        for kind, layer in pass_order(network.n_layers):
            run_pass(step, kind, layer)
        measured = step.result()
        exact = exact_gradient(
            network.devices(), network.activation, network.loss, x[rows], labels[rows]
        )
        exact_programmed = programmed_gradients(network.chips, exact.gradients)
        gradient_error(
            trainer._trainable(measured.gradients), trainer._trainable(exact_programmed)
        )
        gradients = [g * mask for g, mask in zip(measured.gradients, trainer.masks)]
        phases = network.get_phases()
        trainer.optimizer.step(phases, gradients)
        network.set_phases(phases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one short repeat")
    args = parser.parse_args()
    repeats = 1 if args.smoke else args.repeats

    config, dataset = prepare(ExperimentConfig())
    encoder = AmplitudeEncoder(config.network.n_modes).fit(dataset.x_train)
    x = encoder.transform(dataset.x_train)
    if args.smoke:
        x = x[:64]
    labels = dataset.y_train[: len(x)]

    def fresh_trainer() -> Trainer:
        chip_seed, shuffle_seed = np.random.SeedSequence(config.seed).spawn(2)
        return Trainer(config, build_network(config, chip_seed), shuffle_seed)

    ratios = []
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(repeats):
            trainer = fresh_trainer()
            start = time.perf_counter()
            physics_only_epoch(trainer, x, labels)
            physics = time.perf_counter() - start

            trainer = fresh_trainer()
            start = time.perf_counter()
            trainer.train_epoch(x, labels)
            scheduled = time.perf_counter() - start
            ratios.append(scheduled / physics)
            print(
                f"physics only {physics * 1e3:8.1f} ms   with SimPy {scheduled * 1e3:8.1f} ms"
            )
    print(
        f"median wall-time ratio, with SimPy / physics only: {statistics.median(ratios):.3f}"
    )


if __name__ == "__main__":
    main()
