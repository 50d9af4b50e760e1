"""JAX configuration shared by the modelling layers.

Likelihoods are evaluated in float64: the BG/NBD log-likelihood summed over 10^5-10^6 weighted rows loses the
precision NUTS needs for its energy error in float32, and parity with ``lifetimes`` is checked to 1e-8.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)
