"""Global statistics of a cube in one streaming pass, and tile plans.

:func:`stream_stats` reads a :class:`lrrjax.io.lazy.LazyCube` strip by strip
(or any ``(H, W, B)`` array) and returns :class:`CubeStats`: exact per-band
min/max, mean and covariance, a deterministic random pixel sample and a
strided preview for figures. Memory: one strip plus ``O(B^2 + P B)``.

Covariance with a shift ``k`` (the first strip's mean, float64), which keeps
the sums small and the subtraction benign::

  S1 = sum_i (x_i - k),  S2 = sum_i (x_i - k)(x_i - k)^T,
  mu = k + S1 / N,       C = S2 / N - (S1 / N)(S1 / N)^T   (divided by N).

Sums are float64, accumulated over sub-blocks of at most ``_BLOCK`` pixels.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from lrrjax.errors import ConfigError, SceneError

_BLOCK = 1 << 16  # pixels per float64 sub-block (B = 200: 100 MiB)
DEFAULT_SAMPLE = 20_000
DEFAULT_PREVIEW = 1 << 16  # pixels of the figure preview (256 x 256)
# Working memory of a strip, in multiples of its float32 size: the strip, its
# float64 sub-blocks and the scorer's temporaries. Used to size strips.
STRIP_OVERHEAD = 4
# The whole-scene path is used when WHOLE_FACTOR float32 copies of the cube
# fit the budget (the methods keep a few B x N arrays); default of a tiled form.
WHOLE_FACTOR = 4


class CubeStats(NamedTuple):
  """Streamed statistics of a raw (not normalised) ``H x W x B`` cube.

  Attributes:
    height, width, bands: the cube shape; ``n_pixels = H * W``.
    band_min, band_max: ``(B,)`` float64 per-band extremes.
    mean: ``(B,)`` float64 band means.
    cov: ``(B, B)`` float64 covariance divided by N, or None when not asked.
    sample_pb: ``(P, B)`` float32 raw pixels at ``sample_index``.
    sample_index: ``(P,)`` sorted row-major pixel indices (``r * W + c``),
      drawn without replacement by ``numpy.random.default_rng(seed)``.
    preview_hwb: the cube at rows and columns ``::preview_step`` (figures).
    preview_step: stride of the preview.
    hdiff_db: raw horizontal neighbour differences ``x[r, c+1] - x[r, c]`` of
      ``noise_rows`` evenly spaced rows (:func:`even_rows`), ``(rows (W - 1), B)``
      float32, or None when not asked (band-noise estimates).
  """
  height: int
  width: int
  bands: int
  n_pixels: int
  band_min: np.ndarray
  band_max: np.ndarray
  mean: np.ndarray
  cov: np.ndarray | None
  sample_pb: np.ndarray
  sample_index: np.ndarray
  preview_hwb: np.ndarray
  preview_step: int
  hdiff_db: np.ndarray | None = None


def sample_indices(n_pixels: int, size: int, seed: int = 0) -> np.ndarray:
  """``min(size, N)`` sorted distinct pixel indices, deterministic in ``seed``."""
  size = min(int(size), int(n_pixels))
  rng = np.random.default_rng(seed)
  return np.sort(rng.choice(n_pixels, size=size, replace=False)).astype(np.int64)


def even_rows(total: int, m: int) -> np.ndarray:
  """``m`` evenly spaced indices of ``range(total)``: ``floor(i (total - 1) / (m - 1))``
  in exact integer arithmetic (numpy twin of :func:`lrrjax.lrr.general.even_sample`)."""
  m = max(1, min(int(m), int(total)))
  i = np.arange(m, dtype=np.int64)
  d = max(m - 1, 1)
  t1 = int(total) - 1
  return i * (t1 // d) + (i * (t1 % d)) // d


def preview_step(height: int, width: int, pixels: int = DEFAULT_PREVIEW) -> int:
  """Smallest stride ``s`` with ``ceil(H/s) * ceil(W/s) <= pixels``."""
  s = max(1, int(math.floor(math.sqrt(height * width / max(pixels, 1)))))
  while math.ceil(height / s) * math.ceil(width / s) > pixels:
    s += 1
  return s


def strip_rows(width: int, bands: int, budget_bytes: int,
               overhead: int = STRIP_OVERHEAD) -> int:
  """Rows per strip so that ``overhead`` float32 copies of it fit ``budget_bytes``."""
  row = width * bands * 4 * overhead
  return max(1, int(budget_bytes // row))


def _read(cube, r0, r1) -> np.ndarray:
  if hasattr(cube, "read_rows"):
    return cube.read_rows(r0, r1)
  return np.asarray(cube[r0:r1], dtype=np.float32)


def stream_stats(cube, tile_rows: int, *, covariance: bool = True,
                 sample: int = DEFAULT_SAMPLE, seed: int = 0,
                 preview_pixels: int = DEFAULT_PREVIEW, noise_rows: int = 0,
                 on_rows: Callable[[int], None] | None = None) -> CubeStats:
  """One pass over ``cube`` (LazyCube or array) in strips of ``tile_rows`` rows.

  Args:
    cube: a :class:`lrrjax.io.lazy.LazyCube` or an ``(H, W, B)`` array.
    tile_rows: rows per strip (>= 1).
    covariance: also accumulate the covariance (``O(N B^2)`` work).
    sample: pixels in the random sample.
    seed: seed of the sample.
    preview_pixels: pixel budget of the preview.
    noise_rows: rows whose horizontal differences are kept (``hdiff_db``;
      0: none; needs ``W >= 2``).
    on_rows: called with the number of rows done after each strip (progress).

  Raises:
    SceneError: unreadable strip, non-finite values (from ``read_rows``).
  """
  h, w, b = (int(s) for s in cube.shape)
  if tile_rows < 1:
    raise ConfigError(f"tile rows must be >= 1, got {tile_rows}")
  n = h * w
  idx = sample_indices(n, sample, seed)
  step = preview_step(h, w, preview_pixels)
  lo = np.full(b, np.inf)
  hi = np.full(b, -np.inf)
  s1 = np.zeros(b)
  s2 = np.zeros((b, b)) if covariance else None
  shift = None
  sample_pb = np.empty((idx.size, b), np.float32)
  previews = []
  rows_d = even_rows(h, noise_rows) if noise_rows > 0 and w >= 2 else np.zeros(0, np.int64)
  hdiff = np.empty((rows_d.size * (w - 1), b), np.float32) if rows_d.size else None
  for r0 in range(0, h, tile_rows):
    r1 = min(h, r0 + tile_rows)
    tile = _read(cube, r0, r1)
    x = tile.reshape(-1, b)
    lo = np.minimum(lo, x.min(axis=0))
    hi = np.maximum(hi, x.max(axis=0))
    if shift is None:
      shift = x.mean(axis=0, dtype=np.float64)
    for c0 in range(0, x.shape[0], _BLOCK):
      d = x[c0:c0 + _BLOCK].astype(np.float64) - shift
      s1 += d.sum(axis=0)
      if covariance:
        s2 += d.T @ d
    a, z = np.searchsorted(idx, [r0 * w, r1 * w])
    sample_pb[a:z] = x[idx[a:z] - r0 * w]
    for j in range(*np.searchsorted(rows_d, [r0, r1])):
      row = tile[rows_d[j] - r0]
      hdiff[j * (w - 1):(j + 1) * (w - 1)] = row[1:] - row[:-1]
    first = (-r0) % step
    previews.append(tile[first::step, ::step].copy())  # a view would keep the strip alive
    if on_rows is not None:
      on_rows(r1 - r0)
  m1 = s1 / n
  mean = shift + m1
  cov = None
  if covariance:
    cov = s2 / n - np.outer(m1, m1)
    cov = (cov + cov.T) / 2
  return CubeStats(h, w, b, n, lo, hi, mean, cov, sample_pb, idx,
                   np.concatenate(previews, axis=0), step, hdiff)


def constant_bands(stats: CubeStats) -> np.ndarray:
  """Indices (into the streamed bands) of bands with ``min == max``."""
  return np.flatnonzero(stats.band_min == stats.band_max)


def subset_stats(stats: CubeStats, keep: np.ndarray) -> CubeStats:
  """``stats`` restricted to the bands ``keep`` (indices into its bands)."""
  keep = np.asarray(keep)
  return stats._replace(
      bands=int(keep.size), band_min=stats.band_min[keep],
      band_max=stats.band_max[keep], mean=stats.mean[keep],
      cov=None if stats.cov is None else stats.cov[np.ix_(keep, keep)],
      sample_pb=stats.sample_pb[:, keep],
      preview_hwb=stats.preview_hwb[:, :, keep],
      hdiff_db=None if stats.hdiff_db is None else stats.hdiff_db[:, keep])


def normalize_tile(tile_hwb: np.ndarray, stats: CubeStats,
                   mode: str = "global") -> np.ndarray:
  """:func:`lrrjax.io.normalize` of a strip with the whole cube's streamed min/max.

  ``global``: ``(x - min) / (max - min)`` with the cube's overall extremes;
  ``band``: the same per band; ``none``: float32 copy. float64 arithmetic, a
  zero range maps to 0: on the whole cube this equals ``normalize(cube, mode)``.

  Raises:
    ConfigError: unknown mode.
  """
  if mode not in ("global", "band", "none"):
    raise ConfigError(
        f"normalize: unknown mode {mode!r}; use 'global', 'band' or 'none'")
  x = np.asarray(tile_hwb)
  if mode == "none":
    return np.array(x, dtype=np.float32, copy=True)
  if mode == "global":
    lo, hi = float(stats.band_min.min()), float(stats.band_max.max())
  else:
    lo, hi = stats.band_min, stats.band_max
  x = x.astype(np.float64)
  span = np.asarray(hi - lo, dtype=np.float64)
  out = np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.0)
  return out.astype(np.float32)


class Tile(NamedTuple):
  """One strip: core rows ``[r0, r1)`` scored, rows ``[p0, p1)`` read (halo)."""
  r0: int
  r1: int
  p0: int
  p1: int


def plan_tiles(height: int, tile_rows: int, halo: int = 0, *,
               same_shape: bool = False) -> list[Tile]:
  """Strips of ``tile_rows`` rows with ``halo`` extra rows read on each side.

  A last strip shorter than ``halo + 1`` rows is merged into the one before
  (so every strip plus its halo spans at least ``2 halo + 1`` rows when the
  scene does). ``same_shape``: every read span ``[p0, p1)`` has the length of
  the longest one (``min(H, rows + 2 halo)``), shifted inside the scene at its
  top and bottom, so a jitted scorer compiles once; the extra rows are real
  rows of the scene, so the core rows' windows are unchanged.

  Raises:
    ConfigError: ``tile_rows < 1`` or ``> height``, or ``tile_rows <= halo``
      (the strip would be thinner than the method's window).
  """
  if not 1 <= tile_rows <= height:
    raise ConfigError(
        f"tile of {tile_rows} rows does not fit the scene of {height} rows "
        f"(use 1..{height})")
  if tile_rows <= halo:
    raise ConfigError(
        f"tile of {tile_rows} rows is thinner than the method's window needs "
        f"(halo {halo} rows on each side: use at least {halo + 1} rows, or a "
        f"larger --memory-budget)")
  starts = list(range(0, height, tile_rows))
  if len(starts) > 1 and height - starts[-1] <= halo:
    starts.pop()
  ends = starts[1:] + [height]
  tiles = [Tile(a, z, max(0, a - halo), min(height, z + halo))
           for a, z in zip(starts, ends)]
  if same_shape:
    span = max(t.p1 - t.p0 for t in tiles)
    tiles = [t._replace(p0=min(t.p0, height - span), p1=min(t.p0, height - span) + span)
             for t in tiles]
  return tiles


def check_finite_stats(stats: CubeStats, where: str) -> None:
  """SceneError for a constant cube (every band, same value)."""
  if stats.band_min.min() == stats.band_max.max():
    raise SceneError(f"{where}: cube is constant (every value is "
                     f"{stats.band_min.min()!r})")
