"""Slow phase drift of every shifter, advanced on the simulated clock.

Two models:

- random walk: the drift gains independent Gaussian increments of variance σ²·Δt, with σ in
  rad/√s;
- Ornstein–Uhlenbeck: a mean-reverting drift with stationary standard deviation σ (rad) and
  correlation time τ (s), advanced with its exact transition
  x(t + Δt) = x(t)·e^{−Δt/τ} + σ·sqrt(1 − e^{−2Δt/τ})·n.

The drift starts at 0 at time 0 (a freshly calibrated chip).
"""

from __future__ import annotations

import numpy as np

DRIFT_MODELS = ("none", "random-walk", "ornstein-uhlenbeck")


class PhaseDrift:
    """Drift state of a set of phase shifters.

    Args:
        size: number of phase shifters.
        model: one of "none", "random-walk", "ornstein-uhlenbeck".
        std: σ in rad/√s (random walk) or rad (Ornstein–Uhlenbeck).
        correlation_time_s: τ of the Ornstein–Uhlenbeck model, in s.
        rng: generator of the increments.
    """

    def __init__(
        self,
        size: int,
        model: str,
        std: float,
        correlation_time_s: float,
        rng: np.random.Generator,
    ) -> None:
        if model not in DRIFT_MODELS:
            raise ValueError(
                f"drift model {model!r} is unknown; choose one of {', '.join(DRIFT_MODELS)}"
            )
        self.model = model
        self.std = std
        self.correlation_time_s = correlation_time_s
        self.rng = rng
        self.time_s = 0.0
        self.offsets = np.zeros(size)

    @property
    def active(self) -> bool:
        """Whether the drift changes anything."""
        return self.model != "none" and self.std > 0

    def advance(self, time_s: float) -> np.ndarray:
        """Advance the drift to ``time_s`` and return the phase offsets in rad.

        Raises:
            ValueError: if ``time_s`` lies before the time already reached.
        """
        if time_s < self.time_s:
            raise ValueError(
                f"drift time {time_s} s lies before the time already reached, "
                f"{self.time_s} s; the simulated clock only moves forward"
            )
        step = time_s - self.time_s
        self.time_s = time_s
        if not self.active or step == 0:
            return self.offsets
        noise = self.rng.standard_normal(self.offsets.shape)
        if self.model == "random-walk":
            self.offsets = self.offsets + self.std * np.sqrt(step) * noise
        else:
            decay = np.exp(-step / self.correlation_time_s)
            spread = self.std * np.sqrt(1 - decay**2)
            self.offsets = self.offsets * decay + spread * noise
        return self.offsets
