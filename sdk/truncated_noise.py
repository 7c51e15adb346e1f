"""BigGAN's latent convention: a standard normal truncated to [-2, 2], times the truncation.

Upstream (pytorch-pretrained-BigGAN ``utils.truncated_noise_sample``) calls
``scipy.stats.truncnorm.rvs(-2, 2, size=(batch, dim), random_state=np.random.RandomState(seed))``, casts
to float32 and multiplies by the truncation. scipy draws that by inverse transform sampling: one
``RandomState.uniform`` per value, mapped through the truncated normal's quantile function. We do the
same with the standard library's normal quantile, so no scipy is needed; the shared BigGAN fixture's
noise goldens are reproduced bit for bit.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import torch

_STD_NORMAL = NormalDist()
TRUNCATION_BOUND = 2.0


def truncated_noise(batch_size: int, dim_z: int, truncation: float = 1.0, seed: int = 0) -> torch.Tensor:
    """``[batch_size, dim_z]`` float32 truncated-normal noise (values in ``[-2, 2] * truncation``)."""
    if not 0 <= int(seed) < 2 ** 32:
        raise ValueError(f"seed {seed} out of range: seeds are integers in [0, 2**32)")
    u = np.random.RandomState(int(seed)).uniform(0.0, 1.0, size=batch_size * dim_z)
    lo, hi = _STD_NORMAL.cdf(-TRUNCATION_BOUND), _STD_NORMAL.cdf(TRUNCATION_BOUND)
    values = np.array([_STD_NORMAL.inv_cdf(lo + x * (hi - lo)) for x in u.tolist()], dtype=np.float64)
    values = values.reshape(batch_size, dim_z).astype(np.float32)
    return torch.from_numpy(values * np.float32(truncation))


def biggan_seed_to_z(seed: int, z_dim: int, psi: float) -> torch.Tensor:
    """One seed's BigGAN latent ``[1, z_dim]`` (= upstream ``truncated_noise_sample(1, z_dim, psi, seed)``)."""
    return truncated_noise(1, z_dim, psi, seed)
