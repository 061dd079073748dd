"""Scoring a scene larger than memory, strip by strip, into a memory-mapped scores.npy.

:func:`detect_tiled` runs a method's :class:`lrrjax.detectors.TiledForm` on a
:class:`lrrjax.io.lazy.LazyCube`:

1. one streaming pass for :class:`lrrjax.io.stream.CubeStats` (exact global
   statistics, a pixel sample, a preview for figures); constant bands found
   there are dropped (with a notice naming them) or refused;
2. ``state = fit(stats, **params)``;
3. one pass over strips of ``tile_rows`` rows (plus the method's halo),
   ``score(state, strip)`` written into ``scores.partial.npy`` (an
   ``np.lib.format.open_memmap``), renamed to ``scores.npy`` only when every
   strip is done. A form with ``finish`` (LRR-Net+) writes per-pixel raw maps
   to ``raw.partial.npy`` instead, and ``finish`` turns them into the scores
   (the file is removed afterwards). On any error the partial file is removed, so a
   ``scores.npy`` present is always complete.

Memory: one strip (``tile_rows x W x B`` float32 and its temporaries) plus
``O(B^2 + P B)`` statistics and the ``H x W`` float32 scores (memory-mapped).
:func:`plan` decides between this path and the whole-scene one.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, Callable, NamedTuple

import numpy as np

from lrrjax.errors import ConfigError, SceneError
from lrrjax.io import stream
from lrrjax.io.lazy import LazyCube, fmt_gib

MiB = 1 << 20
DEFAULT_BUDGET_MIB = 2048
WHOLE_FACTOR = stream.WHOLE_FACTOR


# The Python/JAX runtime, compiled programs, statistics and scores outside the
# strips (measured ~0.7 GiB for lrrnet-plus on a 512 x 512 x 200 scene).
RESERVE_MIB = 1024


def reserve_bytes(budget_bytes: int) -> int:
  """Part of the budget kept for everything but the strips: ``RESERVE_MIB``,
  at most half of the budget."""
  return min(RESERVE_MIB * MiB, budget_bytes // 2)


class Plan(NamedTuple):
  """``mode`` is "whole" or "tiled"; ``tile_rows`` for the tiled mode."""
  mode: str
  tile_rows: int
  reason: str


def plan(shape_hwb, method: str, tiled, budget_bytes: int,
         tile_rows: int | None = None, where: str = "scene", *,
         resident_bytes: int = 0) -> Plan:
  """Chooses the whole-scene or the tiled path for a cube of ``shape_hwb``.

  ``tiled`` is the method's :class:`lrrjax.detectors.TiledForm` (None: no
  tiled form). Its ``strip_overhead`` and ``whole_factor`` are the float32
  copies a strip and the whole-scene path need (for None, the module defaults
  ``stream.STRIP_OVERHEAD`` and ``WHOLE_FACTOR``).
  ``resident_bytes``: memory already held for the scene (a cube loaded whole
  because its format cannot stream), taken from the strips' share.

  * ``tile_rows`` given: it must lie in ``1..H`` and its strip
    (``strip_overhead`` float32 copies) must fit the budget; ``tile_rows ==
    H`` is one strip, i.e. the whole-scene path.
  * otherwise the whole path when ``whole_factor`` copies of the float32 cube
    fit the budget, else strips sized to the budget less
    :func:`reserve_bytes` (the runtime).
  * a method without a tiled form runs whole, unless the float32 cube alone
    exceeds the budget: ConfigError.

  Raises:
    ConfigError: bad ``tile_rows`` or budget, or a cube too large for a
      method that cannot stream (the message names the scene and sizes).
  """
  h, w, b = (int(s) for s in shape_hwb)
  has_tiled = tiled is not None
  overhead = tiled.strip_overhead if has_tiled else stream.STRIP_OVERHEAD
  factor = tiled.whole_factor if has_tiled else WHOLE_FACTOR
  if budget_bytes <= 0:
    raise ConfigError(f"memory budget must be positive, got {budget_bytes} bytes")
  cube_bytes = h * w * b * 4
  if tile_rows is not None:
    if not 1 <= tile_rows <= h:
      raise ConfigError(
          f"{where}: --tile-rows {tile_rows} does not fit the scene of {h} rows "
          f"(use 1..{h})")
    need = tile_rows * w * b * 4 * overhead
    if need > budget_bytes:
      raise ConfigError(
          f"{where}: a strip of {tile_rows} rows x {w} x {b} needs about "
          f"{fmt_gib(need)} ({overhead} float32 copies), more than "
          f"the memory budget {fmt_gib(budget_bytes)}; use fewer rows or a "
          f"larger --memory-budget")
    if tile_rows == h:
      return Plan("whole", h, "one strip holds the scene")
    if not has_tiled:
      raise ConfigError(
          f"{where}: method {method!r} has no tiled form; --tile-rows applies to "
          f"methods with one (see `lrrjax detect --help`)")
    return Plan("tiled", tile_rows, "--tile-rows")
  if cube_bytes * factor <= budget_bytes:
    return Plan("whole", h, "fits the memory budget")
  if has_tiled:
    free = budget_bytes - reserve_bytes(budget_bytes) - resident_bytes
    rows = min(h, stream.strip_rows(w, b, max(free, 1), overhead))
    return Plan("tiled" if rows < h else "whole", rows,
                f"cube {fmt_gib(cube_bytes)} as float32 over budget/"
                f"{factor}")
  if cube_bytes > budget_bytes:
    raise ConfigError(
        f"{where}: the cube {h} x {w} x {b} needs {fmt_gib(cube_bytes)} as "
        f"float32, more than the memory budget {fmt_gib(budget_bytes)}, and "
        f"method {method!r} has no tiled form (it loads the whole scene); use a "
        f"method with one or raise --memory-budget")
  return Plan("whole", h, "no tiled form; cube within budget")


def drop_constant(cube: LazyCube, stats: stream.CubeStats, drop: bool,
                  notice: Callable[[str], None] | None = None
                  ) -> tuple[LazyCube, stream.CubeStats, list[int]]:
  """Drops (or refuses) the constant bands found in ``stats``.

  Returns:
    The cube and stats without them, and their file band indices.

  Raises:
    SceneError: constant bands and ``drop`` is False; or every band constant.
  """
  const = stream.constant_bands(stats)
  if const.size == 0:
    return cube, stats, []
  stream.check_finite_stats(stats, str(cube.path))
  file_idx = cube.band_index()
  names = [int(file_idx[i]) for i in const]
  if const.size == stats.bands:
    raise SceneError(f"{cube.path}: cube {cube.shape} is constant in every band")
  if not drop:
    raise SceneError(
        f"{cube.path}: cube {cube.shape} has {const.size} constant band(s) at "
        f"file indices {names} (zero variance makes the background covariance "
        f"singular); drop them (the default; --keep-constant-bands refuses) or "
        f"list them in --bad-bands")
  keep = np.setdiff1d(np.arange(stats.bands), const)
  if notice is not None:
    notice(f"note: {cube.name}: dropped {const.size} constant band(s) {names} "
           f"(zero variance)")
  return cube.with_bands(file_idx[keep]), stream.subset_stats(stats, keep), names


def detect_tiled(cube: LazyCube, spec, params: dict[str, Any],
                 out_dir: str | os.PathLike, tile_rows: int, *, seed: int = 0,
                 drop_constant_bands: bool = True,
                 notice: Callable[[str], None] | None = None,
                 progress=None) -> tuple[np.ndarray, stream.CubeStats, dict]:
  """Scores ``cube`` with ``spec.tiled`` into ``out_dir/scores.npy``.

  Args:
    cube: the lazily read scene.
    spec: a :class:`lrrjax.detectors.MethodSpec` with a ``tiled`` form.
    params: the method's parameters (:func:`lrrjax.detectors.resolve_params`).
    out_dir: folder of ``scores.npy``.
    tile_rows: rows per strip (also for the statistics pass).
    seed: seed of the statistics' pixel sample.
    drop_constant_bands: drop constant bands (else SceneError).
    notice: called with one-line notices (dropped bands).
    progress: a :class:`lrrjax.progress.Progress` over ``2 H W`` pixels, or None.

  Returns:
    ``(scores_hw, stats, info)``: scores read back memory-mapped, the
    streamed statistics (of the kept bands) and ``{"tile_rows", "tiles",
    "halo", "dropped_bands"}``.

  Raises:
    SceneError / ConfigError: unreadable or truncated strip, non-finite
      values, bad tile size; ``scores.npy`` is then absent (never partial).
  """
  form = spec.tiled
  if form is None:
    raise ConfigError(f"method {spec.name!r} has no tiled form")
  h, w, _ = cube.shape
  out_dir = pathlib.Path(out_dir)
  final = out_dir / "scores.npy"
  partial = out_dir / "scores.partial.npy"
  for p in (final, partial):  # an old result must not pass for this run's
    if p.exists():
      p.unlink()
  tick = (lambda rows: progress.update(rows * w)) if progress is not None else None
  noise_rows = form.noise_rows(h, w) if callable(form.noise_rows) else int(form.noise_rows)
  stats = stream.stream_stats(cube, tile_rows, covariance=form.needs_covariance,
                              seed=seed, noise_rows=noise_rows, on_rows=tick)
  cube, stats, dropped = drop_constant(cube, stats, drop_constant_bands, notice)
  state = form.fit(stats, **params)
  halo = int(form.halo(state) if callable(form.halo) else form.halo)
  tiles = stream.plan_tiles(h, tile_rows, halo, same_shape=True)
  raw_path = out_dir / "raw.partial.npy"
  try:
    scores = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32,
                                       shape=(h, w))
    raw = None
    for t in tiles:
      strip = cube.read_rows(t.p0, t.p1)
      s = np.asarray(form.score(state, strip), dtype=np.float32)
      want = (t.p1 - t.p0, w)
      if form.finish is not None:
        if raw is None and s.ndim == 3:
          raw = np.lib.format.open_memmap(raw_path, mode="w+", dtype=np.float32,
                                          shape=(s.shape[0], h, w))
        want = (-1 if raw is None else raw.shape[0],) + want
      if s.shape != want:
        raise SceneError(
            f"method {spec.name!r} tiled score returned {s.shape} for a strip of "
            f"{want} in scene {cube.name!r}")
      if raw is None:
        scores[t.r0:t.r1] = s[t.r0 - t.p0:t.r1 - t.p0]
      else:
        raw[:, t.r0:t.r1] = s[:, t.r0 - t.p0:t.r1 - t.p0]
      if tick is not None:
        tick(t.r1 - t.r0)
    if raw is not None:
      raw.flush()
      scores[:] = np.asarray(form.finish(state, raw, tile_rows), dtype=np.float32)
      del raw
    scores.flush()
    del scores
    os.replace(partial, final)
  except BaseException:
    if partial.exists():
      partial.unlink()
    raise
  finally:
    if raw_path.exists():
      raw_path.unlink()
    if progress is not None:
      progress.close()
  info = {"tile_rows": int(tile_rows), "tiles": len(tiles), "halo": halo,
          "dropped_bands": dropped}
  return np.load(final, mmap_mode="r"), stats, info
