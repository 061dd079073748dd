"""Where the strip time of the shipped LRR-Net+ goes, and what other kernels do.

  python experiments/kernel_variants.py --out results/scaling/kernel_variants.json \
      [--cube /tmp/lrrjax_scaling/cube_1024_200.npy] [--rows 64]

Issue #9 asks for LRR-Net+ inference within 2x of this machine's matmul rate
for its FLOP count; :func:`scaling.lrrnet_flop_rate` reports the stages alone
and the whole strip (stages + per-pixel features). This script times, on the
same strip (the first ``rows`` rows of the 1024 x 1024 x 200 scaling cube,
written by :func:`scaling.write_cube` if absent), alternatives that compute
the same values, so a later attempt starts from measured numbers:

Stages (GFLOP/s of the ``T (6 B K + 4 K^2)`` matmul FLOPs per pixel):

* ``shipped``: :func:`lrrjax.lrr.tiled.apply_frozen_devices` ((n, B) blocks of
  ``PIXEL_BLOCK`` pixels carrying ``W = X + Y1/mu_t`` and ``Q = W - S``);
  ``shipped_2048``: the same with 2048-pixel blocks; ``shipped_norms``: as the
  strips run them (:func:`lrrjax.lrr.tiled.apply_frozen_norms`: the last stage
  returns the norms of S, not S).
* ``y1_form_2048``: the stages as parameter version 1 ran them ((B, n) blocks
  of 2048 pixels carrying ``Y1`` and ``S``: one more pass over a B x n array
  per stage); equal to ``shipped`` to float32 rounding.
* ``matmul_skeleton``: the five products of a stage with one subtraction
  between them and no shrinkage: not a detector, the floor the dots set.

Box sums of the feature pass (every half-width of ``RINGS`` and
``WHITE_RINGS`` on the strip's residual E, (h, W, B)): ``reduce_window`` (the
shipped separable :func:`lrrjax.lrr.score_head._box_sum`), ``shifted_slices``
(a sum of 2r+1 shifted slices per axis), ``nested_slices`` (each wider sum
from the previous one plus two slices per step) and ``summed_area`` (a
summed-area table by blocked triangular matmuls, four corners per box, on the
band-centred residual); with each one's largest deviation from the shipped
sums. ``raw_features``: the whole shipped feature pass; ``strip_seconds``: a
whole strip as the tiled detector runs it (stages and features).

Seconds are the best of ``--repeats`` warm calls; the matmul rate is measured
before and after (best kept), as in :mod:`scaling`. Nothing here changes the
package.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import scaling  # noqa: E402  pylint: disable=wrong-import-position

HIGHEST = None  # set in main (jax imported lazily, as in scaling.py)


def y1_stages(x_bn, ops, block: int = 2048):
  """The frozen stages as parameter version 1 ran them: (B, n) blocks carrying
  ``Y1`` and ``S`` (:func:`lrrjax.lrr.tiled.frozen_unroll`'s own steps);
  returns ``(S, E)`` as (B, n)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import tiled  # pylint: disable=import-outside-toplevel
  # pylint: disable=protected-access
  b, n = x_bn.shape
  nb = -(-n // block)
  xb = jnp.pad(x_bn, ((0, 0), (0, nb * block - n))).reshape(b, nb, block).transpose(1, 0, 2)

  def run(xc):
    def body(st, op):
      j_kn, l_kn, s_bn = tiled._l_and_s(st, xc, op)
      return tiled._close(st, xc, j_kn, l_kn, s_bn, op.d_next_bk, op.mu), None
    st, _ = jax.lax.scan(body, tiled._zero_state(xc, ops.d_bk.shape[-1]), ops)
    return st.s_bn, xc - ops.d_next_bk[-1] @ st.l_kn

  with jax.default_matmul_precision("highest"):
    s, e = jax.lax.map(run, xb)
  unblock = lambda a: a.transpose(1, 0, 2).reshape(b, nb * block)[:, :n]  # noqa: E731
  return unblock(s), unblock(e)


def matmul_skeleton(x_bn, ops, block: int = 2048):
  """The five products of each stage on (B, n) blocks, almost nothing else."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  b, n = x_bn.shape
  k = ops.d_bk.shape[-1]
  nb = -(-n // block)
  xb = jnp.pad(x_bn, ((0, 0), (0, nb * block - n))).reshape(b, nb, block).transpose(1, 0, 2)

  def run(xc):
    def body(c, op):
      l, s = c
      j = op.svt_kk @ l
      l = op.inv_kk @ (op.d_bk.T @ (xc - s) + j)
      return (l, 0.5 * (op.d_bk @ l) + 0.1 * (op.d_next_bk @ l)), None
    (_, s), _ = jax.lax.scan(body, (jnp.zeros((k, block)), jnp.zeros((b, block))), ops)
    return s

  with jax.default_matmul_precision("highest"):
    return jax.lax.map(run, xb)


def box_variants(radii):
  """name -> f(e_hwb) returning the stacked box sums (len(radii), h, W, B)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import score_head  # pylint: disable=import-outside-toplevel
  big = max(radii)

  def shifted(x, r, axis):
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    xp = jnp.pad(x, pad)
    return sum(jax.lax.slice_in_dim(xp, d, d + n, axis=axis) for d in range(2 * r + 1))

  def nested(x, rs, axis):
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (big, big)
    xp = jnp.pad(x, pad)
    sl = lambda d: jax.lax.slice_in_dim(xp, big + d, big + d + n, axis=axis)  # noqa: E731
    out, acc, cur = {}, sl(0), 0
    for r in sorted(rs):
      for d in range(cur + 1, r + 1):
        acc = acc + sl(-d) + sl(d)
      out[r], cur = acc, r
    return out

  def prefix(x, axis, block=32):
    x = jnp.moveaxis(x, axis, -1)
    n = x.shape[-1]
    m = -(-n // block)
    xb = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, m * block - n)]).reshape(
        x.shape[:-1] + (m, block))
    within = jnp.matmul(xb, jnp.triu(jnp.ones((block, block), x.dtype)), precision=HIGHEST)
    carry = jnp.matmul(within[..., -1], jnp.triu(jnp.ones((m, m), x.dtype), 1),
                       precision=HIGHEST)
    out = (within + carry[..., None]).reshape(x.shape[:-1] + (m * block,))[..., :n]
    return jnp.moveaxis(out, -1, axis)

  def summed_area(x):
    h, w, _ = x.shape
    mean = jnp.mean(x, axis=(0, 1), keepdims=True)
    sat = prefix(prefix(jnp.pad(x - mean, ((big + 1, big), (big + 1, big), (0, 0))), 1), 0)
    ones = jnp.ones((h, w, 1), x.dtype)
    out = []
    for r in radii:
      lo, hi = big - r, big + r + 1
      corner = lambda i, j: sat[i:i + h, j:j + w]  # noqa: E731
      out.append(corner(hi, hi) - corner(lo, hi) - corner(hi, lo) + corner(lo, lo)
                 + mean * score_head._box_sum(ones, r))  # pylint: disable=protected-access
    return jnp.stack(out)

  return {
      "reduce_window": lambda x: jnp.stack(
          [score_head._box_sum(x, r) for r in radii]),  # pylint: disable=protected-access
      "shifted_slices": lambda x: jnp.stack([shifted(shifted(x, r, 0), r, 1) for r in radii]),
      "nested_slices": lambda x: jnp.stack(
          [nested(nested(x, radii, 0)[r], (r,), 1)[r] for r in radii]),
      "summed_area": summed_area,
  }


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--out", type=pathlib.Path, required=True)
  p.add_argument("--cube", type=pathlib.Path,
                 default=pathlib.Path("/tmp/lrrjax_scaling/cube_1024_200.npy"))
  p.add_argument("--rows", type=int, default=64)
  p.add_argument("--repeats", type=int, default=5)
  args = p.parse_args(argv)
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lrrjax import provenance  # pylint: disable=import-outside-toplevel
  from lrrjax.io import stream  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import general, tiled  # pylint: disable=import-outside-toplevel
  global HIGHEST  # pylint: disable=global-statement
  HIGHEST = jax.lax.Precision.HIGHEST
  if not args.cube.exists():
    args.cube.parent.mkdir(parents=True, exist_ok=True)
    scaling.write_cube(args.cube, 1024, 200)
  arr = np.load(args.cube, mmap_mode="r")
  h, w, b = arr.shape
  strip = np.ascontiguousarray(arr[:args.rows], dtype=np.float32)
  stats = stream.stream_stats(arr, 256, covariance=True, noise_rows=tiled.noise_rows(h, w))
  state = tiled.fit(stats)
  t, _, k = state.ops.d_bk.shape
  ops = jax.tree.map(jnp.asarray, state.ops)
  x_nb = jnp.asarray((strip.reshape(-1, b) - state.lo) / state.span) * state.omega_b
  x_bn = jnp.asarray(x_nb.T)
  n = x_nb.shape[0]
  flops = t * (6 * b * k + 4 * k * k) * n
  rate0 = scaling.matmul_gflops()

  shipped = jax.jit(tiled.apply_frozen_devices)
  s_ref, e_ref = shipped(x_nb, ops)
  stages = {"shipped": (shipped, (x_nb, ops), None),
            "shipped_2048": (jax.jit(lambda x, o: tiled.apply_frozen_devices(x, o, block=2048)),
                             (x_nb, ops), False),
            "y1_form_2048": (jax.jit(y1_stages), (x_bn, ops), True),
            "shipped_norms": (jax.jit(lambda x, o: tiled.apply_frozen_devices(
                x, o, fn=tiled.apply_frozen_norms)), (x_nb, ops), None),
            "matmul_skeleton": (jax.jit(matmul_skeleton), (x_bn, ops), None)}
  rec = {"strip": f"{args.rows} x {w} x {b}", "pixels": n, "stages": int(t), "atoms": int(k),
         "matmul_flops": flops, "stages_gflops": {}, "stages_max_rel_diff": {}}
  for name, (f, fargs, transposed) in stages.items():
    sec = scaling.best_seconds(lambda f=f, fargs=fargs: f(*fargs), args.repeats)
    rec["stages_gflops"][name] = flops / sec / 1e9
    if transposed is not None:
      s1, e1 = (a.T if transposed else a for a in f(*fargs))
      rec["stages_max_rel_diff"][name] = max(
          float(jnp.max(jnp.abs(s1 - s_ref)) / jnp.max(jnp.abs(s_ref))),
          float(jnp.max(jnp.abs(e1 - e_ref)) / jnp.max(jnp.abs(e_ref))))

  radii = tuple(sorted({r for ring in general.RINGS + general.WHITE_RINGS for r in ring}))
  e_hwb = e_ref.reshape(args.rows, w, b)
  rec["box_radii"] = list(radii)
  rec["box_seconds"], rec["box_max_abs_diff"] = {}, {}
  ref = None
  for name, f in box_variants(radii).items():
    g = jax.jit(f)
    out = g(e_hwb)
    ref = out if ref is None else ref
    rec["box_seconds"][name] = scaling.best_seconds(lambda g=g: g(e_hwb), args.repeats)
    rec["box_max_abs_diff"][name] = float(jnp.max(jnp.abs(out - ref)))
  rec["residual_std"] = float(jnp.std(e_ref))
  raw = jax.jit(general.raw_features, static_argnums=(3, 4))
  s_norm = jnp.linalg.norm(s_ref, axis=1)
  noise = jnp.asarray(state.noise_b)
  pcs = general.PCBasis(jnp.asarray(state.pc_mean_b), jnp.asarray(state.pc_bk))
  rec["raw_features_seconds"] = scaling.best_seconds(
      lambda: raw(s_norm, e_ref, noise, args.rows, w, x_nb, pcs), args.repeats)
  rec["strip_seconds"] = scaling.best_seconds(lambda: tiled.score(state, strip), args.repeats)
  rate1 = scaling.matmul_gflops()
  rec["matmul_gflops_around"] = [rate0, rate1]
  rate = max(rate0, rate1)
  rec["ratio_to_matmul"] = {name: rate / g for name, g in rec["stages_gflops"].items()}
  rec["ratio_strip_shipped"] = rate / (flops / rec["strip_seconds"] / 1e9)
  provenance.write_json(args.out, {"record": rec, "provenance": provenance.record(
      config={"cube": str(args.cube), "rows": args.rows, "repeats": args.repeats})})
  print(json.dumps(rec, indent=1))
  return 0


if __name__ == "__main__":
  sys.exit(main())
