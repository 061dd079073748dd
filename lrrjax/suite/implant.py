"""Target implantation with known size, fill fraction and spectrum source.

A target of side ``s`` at top-left ``(r, c)`` with fill fraction ``f`` and
spectra ``t`` replaces the host's pixels ``b`` of the square by

  ``x(p) = f * t(p) + (1 - f) * b(p)``,

the linear mixing model of a target covering a fraction ``f`` of each pixel
(``f < 1``: sub-pixel; ``f = 1``: full pixels). ``t(p)`` cycles through the
pixels of one labelled anomaly of a donor scene, purest first (largest
distance to the anomaly's edge), so a multi-pixel target keeps the donor's
own pixel-to-pixel variability. Sizes are ``SIZES`` (1x1 to 7x7) plus a few
``LARGE`` (15x15) objects; fills are drawn uniformly inside ``FILL_BINS``.
Targets keep ``GAP`` background pixels between each other and ``MARGIN`` from
the border; about a third are placed next to (within ``NEAR`` pixels of, not
on) a large bright structure: a connected region of >= ``BRIGHT_MIN_PIXELS``
pixels whose mean over bands is at least the scene's 97th percentile (and
above its median).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
from scipy import ndimage

from lrrjax.errors import SceneError

SIZES = (1, 2, 3, 5, 7)
LARGE = 15
FILL_BINS = ((0.05, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.5), (0.5, 1.0), (1.0, 1.0))
MARGIN = 3
GAP = 2
NEAR = 3
BRIGHT_QUANTILE = 97.0
BRIGHT_MIN_PIXELS = 30


class TargetSpec(NamedTuple):
  """What to implant: side in pixels, fill fraction, whether to seek a bright neighbour."""
  size: int
  fill: float
  want_near: bool


class DonorPixels(NamedTuple):
  """One labelled anomaly of a donor scene: its spectra, purest first."""
  scene: str
  component: int
  rows: np.ndarray       # (K,) int
  cols: np.ndarray       # (K,) int
  spectra_kb: np.ndarray  # (K, B) float32


def fill_bin_label(lo: float, hi: float) -> str:
  """`fill=0.1-0.2`, or `fill=1.0` for the full-pixel bin."""
  return "fill=1.0" if lo == hi else f"fill={lo:g}-{hi:g}"


def fill_bin_of(f: float) -> str:
  """The label of the bin holding fill fraction `f` (bins are [lo, hi))."""
  for lo, hi in FILL_BINS:
    if (lo == hi == f) or lo <= f < hi:
      return fill_bin_label(lo, hi)
  raise SceneError(f"fill fraction {f} is outside the suite's bins {FILL_BINS}")


def plan(rng: np.random.Generator, n_small: int, n_large: int) -> list[TargetSpec]:
  """Large objects first (they need room), then small targets cycling a random
  order of the SIZES x FILL_BINS grid; every third target seeks a bright neighbour."""
  specs = [TargetSpec(LARGE, 1.0, i % 2 == 0) for i in range(n_large)]
  grid = [(s, b) for s in SIZES for b in range(len(FILL_BINS))]
  order = rng.permutation(len(grid))
  for i in range(n_small):
    size, b = grid[order[i % len(grid)]]
    lo, hi = FILL_BINS[b]
    f = lo if lo == hi else min(round(float(rng.uniform(lo, hi)), 4), hi - 1e-4)
    specs.append(TargetSpec(size, float(f), i % 3 == 0))
  return specs


def bright_structures(cube_hwb: np.ndarray) -> np.ndarray:
  """(H, W) bool: large bright connected regions (module docstring)."""
  level = cube_hwb.mean(axis=2)
  lab, n = ndimage.label((level >= np.percentile(level, BRIGHT_QUANTILE))
                         & (level > np.median(level)))
  if n == 0:
    return np.zeros(level.shape, bool)
  counts = np.bincount(lab.ravel(), minlength=n + 1)
  big = counts >= BRIGHT_MIN_PIXELS
  big[0] = False
  return big[lab]


def _box_sums(a_hw: np.ndarray, s: int) -> np.ndarray:
  """(H-s+1, W-s+1) sums of `a` over every s x s square (top-left indexed)."""
  sat = np.zeros((a_hw.shape[0] + 1, a_hw.shape[1] + 1), np.int64)
  sat[1:, 1:] = np.cumsum(np.cumsum(a_hw.astype(np.int64), 0), 1)
  return sat[s:, s:] - sat[:-s, s:] - sat[s:, :-s] + sat[:-s, :-s]


def _place(rng: np.random.Generator, free_hw: np.ndarray, bright_hw: np.ndarray,
           near_hw: np.ndarray, spec: TargetSpec) -> tuple[int, int] | None:
  """A random top-left corner whose square is free (and near bright if wanted)."""
  s = spec.size
  if s > min(free_hw.shape):
    return None
  ok = _box_sums(~free_hw, s) == 0
  if spec.want_near:
    near_ok = ok & (_box_sums(near_hw, s) > 0) & (_box_sums(bright_hw, s) == 0)
    if near_ok.any():
      ok = near_ok
  cand = np.flatnonzero(ok.ravel())
  if cand.size == 0:
    return None
  k = int(cand[rng.integers(0, cand.size)])
  return divmod(k, ok.shape[1])


def implant_targets(rng: np.random.Generator, cube_hwb: np.ndarray,
                    blocked_hw: np.ndarray, specs: list[TargetSpec],
                    spectra_for: Callable[[np.random.Generator, int, int, int],
                                          tuple[np.ndarray, dict[str, Any]]],
                    ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
  """Places and mixes the targets into a copy of the cube.

  Args:
    rng: generator (placement, donor choice).
    cube_hwb: (H, W, B) host cube (anomaly-free background).
    blocked_hw: (H, W) bool pixels no target may cover (e.g. inpainted areas).
    specs: the targets (plan()).
    spectra_for: (rng, row, col, side) -> ((K, B) spectra, source record) for a
      target at (row, col); raises SceneError when none fits the host.

  Returns:
    (cube float32, gt bool, target records). A target that finds no room is
    left out (the records list only the implanted ones).
  """
  cube = np.array(cube_hwb, np.float32, copy=True)
  h, w, _ = cube.shape
  bright = bright_structures(cube)
  near = ndimage.binary_dilation(bright, iterations=NEAR) & ~bright
  free = ~np.asarray(blocked_hw, bool) & ~bright
  free[:MARGIN] = free[-MARGIN:] = False
  free[:, :MARGIN] = free[:, -MARGIN:] = False
  gt = np.zeros((h, w), bool)
  records = []
  for spec in specs:
    where = _place(rng, free, bright, near, spec)
    if where is None:
      continue
    r, c = where
    s = spec.size
    spectra_kb, source = spectra_for(rng, r, c, s)
    t = spectra_kb[np.arange(s * s) % spectra_kb.shape[0]].reshape(s, s, -1)
    f = np.float32(spec.fill)
    cube[r:r + s, c:c + s] = f * t + (np.float32(1) - f) * cube[r:r + s, c:c + s]
    gt[r:r + s, c:c + s] = True
    free[max(r - GAP, 0):r + s + GAP, max(c - GAP, 0):c + s + GAP] = False
    records.append({"id": len(records), "row": int(r), "col": int(c), "size": s,
                    "fill": spec.fill,
                    "context": "near-bright" if near[r:r + s, c:c + s].any()
                               else "open",
                    "spectrum": source})
  return cube, gt, records


def donor_components(name: str, cube_hwb: np.ndarray, gt_hw: np.ndarray
                     ) -> list[DonorPixels]:
  """The labelled anomalies (8-connected) of a donor scene, each purest pixel first."""
  gt = np.asarray(gt_hw, bool)
  lab, n = ndimage.label(gt, structure=np.ones((3, 3), bool))
  depth = ndimage.distance_transform_edt(gt)
  out = []
  for k in range(1, n + 1):
    rows, cols = np.nonzero(lab == k)
    order = np.lexsort((cols, rows, -depth[rows, cols]))
    rows, cols = rows[order], cols[order]
    out.append(DonorPixels(name, k, rows, cols,
                           np.asarray(cube_hwb[rows, cols], np.float32)))
  return out


def pick_donor(rng: np.random.Generator, pool: dict[str, list[DonorPixels]],
               exclude: set[str], host: str) -> tuple[np.ndarray, dict[str, Any]]:
  """Spectra of one random labelled anomaly of a random donor scene not in `exclude`.

  Raises:
    SceneError: no donor scene is left (the host's band set has no other scene).
  """
  names = sorted(n for n, comps in pool.items() if n not in exclude and comps)
  if not names:
    raise SceneError(
        f"scene {host!r} cannot host a transplant: no other scene of the same "
        f"sensor and band set with labelled anomalies (donors considered: "
        f"{sorted(pool) or 'none'})")
  name = names[int(rng.integers(0, len(names)))]
  comps = pool[name]
  d = comps[int(rng.integers(0, len(comps)))]
  return d.spectra_kb, {"scene": d.scene, "component": int(d.component),
                        "pixels": int(d.rows.size),
                        "purest": [int(d.rows[0]), int(d.cols[0])]}
