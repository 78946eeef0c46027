"""Encoding of real features into input amplitudes of constant total power.

Every sample is launched with the same total power: the features occupy the first ports and
the remaining bias ports share the power left over equally, ``b = sqrt((P − |x|²)/n_bias)``,
as in the lab setup of Pai et al., Science 380, 398 (2023).
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


class AmplitudeEncoder:
    """Scale features fitted on a training set and encode them with bias ports.

    Args:
        n_modes: number of input ports; at least one more than the number of features.
        power: total launched power of every sample, in units of the launched power.
        fill: fraction of ``power`` that the largest training sample's features use. The
            rest goes to the bias ports, so samples unseen in training have room to be larger.
    """

    def __init__(self, n_modes: int, power: float = 1.0, fill: float = 0.6) -> None:
        if not (np.isfinite(power) and power > 0):
            raise ValueError(f"input power {power!r} is invalid; it must be > 0")
        if not 0 < fill < 1:
            raise ValueError(f"feature fill {fill!r} is invalid; it must lie in (0, 1)")
        self.n_modes = n_modes
        self.power = float(power)
        self.fill = float(fill)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.gain: float | None = None

    def _check(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=float)
        if features.ndim != 2:
            raise ValueError(
                f"features have shape {features.shape}; expected (samples, features)"
            )
        if not np.all(np.isfinite(features)):
            rows = np.unique(np.nonzero(~np.isfinite(features))[0])
            raise ValueError(
                f"features contain NaN or infinity in rows {rows[:5].tolist()}"
            )
        if features.shape[1] >= self.n_modes:
            raise ValueError(
                f"{features.shape[1]} features need at least {features.shape[1] + 1} modes "
                f"(one bias port), but the mesh has {self.n_modes}"
            )
        return features

    def fit(self, features: np.ndarray) -> AmplitudeEncoder:
        """Fit the per-feature standardisation and the overall gain on training features."""
        features = self._check(features)
        self.mean = features.mean(axis=0)
        std = features.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        scaled = (features - self.mean) / self.std
        largest = np.max(np.sum(scaled**2, axis=1))
        self.gain = (
            float(np.sqrt(self.fill * self.power / largest)) if largest > 0 else 1.0
        )
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        """Input fields ``(samples, n_modes)`` of total power ``power`` each.

        A sample whose scaled features would exceed the total power is shrunk to leave a
        little power on the bias ports, and the count of such samples is logged.
        """
        if self.gain is None:
            raise RuntimeError("AmplitudeEncoder.transform called before fit")
        features = self._check(features)
        scaled = (features - self.mean) / self.std * self.gain
        norm2 = np.sum(scaled**2, axis=1)
        limit = 0.95 * self.power
        over = norm2 > limit
        if np.any(over):
            logger.info(
                "%d samples exceed the input power and were shrunk", int(over.sum())
            )
            scaled[over] *= np.sqrt(limit / norm2[over])[:, None]
            norm2 = np.sum(scaled**2, axis=1)
        n_bias = self.n_modes - features.shape[1]
        bias = np.sqrt((self.power - norm2) / n_bias)
        fields = np.empty((features.shape[0], self.n_modes), dtype=np.complex128)
        fields[:, : features.shape[1]] = scaled
        fields[:, features.shape[1] :] = bias[:, None]
        return fields
