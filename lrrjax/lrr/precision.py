"""Full float32 matmul precision for the LRR linear algebra on every backend.

On GPUs JAX's default float32 matmul may use TF32 (10-bit mantissa, ~1e-3
relative error), which is enough for a CNN but not for an ADMM whose iterates
are checked against float64 oracles: on an H100 14 LRR tests failed at the
default precision. Every public LRR function that multiplies matrices runs its
trace under ``jax.default_matmul_precision("highest")``; the precision is
recorded on each dot, so gradients (transposes) inherit it. Custom-VJP backward
rules are wrapped too, since they are traced later.
"""

import functools

import jax


def highest(fn):
  """Decorator: trace ``fn`` with float32 ("highest") matmul precision."""

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    with jax.default_matmul_precision("highest"):
      return fn(*args, **kwargs)

  return wrapper
