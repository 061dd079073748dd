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
   strip is done. On any error the partial file is removed, so a
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
# The whole-scene path is used when WHOLE_FACTOR float32 copies of the cube
# fit the budget (the methods keep a few B x N arrays).
WHOLE_FACTOR = 4


class Plan(NamedTuple):
  """``mode`` is "whole" or "tiled"; ``tile_rows`` for the tiled mode."""
  mode: str
  tile_rows: int
  reason: str


def plan(shape_hwb, method: str, has_tiled: bool, budget_bytes: int,
         tile_rows: int | None = None, where: str = "scene") -> Plan:
  """Chooses the whole-scene or the tiled path for a cube of ``shape_hwb``.

  * ``tile_rows`` given: it must lie in ``1..H`` and its strip
    (``STRIP_OVERHEAD`` float32 copies) must fit the budget; ``tile_rows ==
    H`` is one strip, i.e. the whole-scene path.
  * otherwise the whole path when ``WHOLE_FACTOR`` copies of the float32 cube
    fit the budget, else strips sized to the budget.
  * a method without a tiled form runs whole, unless the float32 cube alone
    exceeds the budget: ConfigError.

  Raises:
    ConfigError: bad ``tile_rows`` or budget, or a cube too large for a
      method that cannot stream (the message names the scene and sizes).
  """
  h, w, b = (int(s) for s in shape_hwb)
  if budget_bytes <= 0:
    raise ConfigError(f"memory budget must be positive, got {budget_bytes} bytes")
  cube_bytes = h * w * b * 4
  if tile_rows is not None:
    if not 1 <= tile_rows <= h:
      raise ConfigError(
          f"{where}: --tile-rows {tile_rows} does not fit the scene of {h} rows "
          f"(use 1..{h})")
    need = tile_rows * w * b * 4 * stream.STRIP_OVERHEAD
    if need > budget_bytes:
      raise ConfigError(
          f"{where}: a strip of {tile_rows} rows x {w} x {b} needs about "
          f"{fmt_gib(need)} ({stream.STRIP_OVERHEAD} float32 copies), more than "
          f"the memory budget {fmt_gib(budget_bytes)}; use fewer rows or a "
          f"larger --memory-budget")
    if tile_rows == h:
      return Plan("whole", h, "one strip holds the scene")
    if not has_tiled:
      raise ConfigError(
          f"{where}: method {method!r} has no tiled form; --tile-rows applies to "
          f"methods with one (see `lrrjax detect --help`)")
    return Plan("tiled", tile_rows, "--tile-rows")
  if cube_bytes * WHOLE_FACTOR <= budget_bytes:
    return Plan("whole", h, "fits the memory budget")
  if has_tiled:
    rows = min(h, stream.strip_rows(w, b, budget_bytes))
    return Plan("tiled" if rows < h else "whole", rows,
                f"cube {fmt_gib(cube_bytes)} as float32 over budget/"
                f"{WHOLE_FACTOR}")
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
  stats = stream.stream_stats(cube, tile_rows, covariance=form.needs_covariance,
                              seed=seed, on_rows=tick)
  cube, stats, dropped = drop_constant(cube, stats, drop_constant_bands, notice)
  state = form.fit(stats, **params)
  halo = int(form.halo(state) if callable(form.halo) else form.halo)
  tiles = stream.plan_tiles(h, tile_rows, halo)
  try:
    scores = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32,
                                       shape=(h, w))
    for t in tiles:
      strip = cube.read_rows(t.p0, t.p1)
      s = np.asarray(form.score(state, strip), dtype=np.float32)
      if s.shape != (t.p1 - t.p0, w):
        raise SceneError(
            f"method {spec.name!r} tiled score returned {s.shape} for a strip of "
            f"{(t.p1 - t.p0, w)} in scene {cube.name!r}")
      scores[t.r0:t.r1] = s[t.r0 - t.p0:t.r1 - t.p0]
      if tick is not None:
        tick(t.r1 - t.r0)
    scores.flush()
    del scores
    os.replace(partial, final)
  except BaseException:
    if partial.exists():
      partial.unlink()
    raise
  finally:
    if progress is not None:
      progress.close()
  info = {"tile_rows": int(tile_rows), "tiles": len(tiles), "halo": halo,
          "dropped_bands": dropped}
  return np.load(final, mmap_mode="r"), stats, info
