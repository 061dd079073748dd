"""Figures: false-colour composites, detection maps, ROC curves, box plots.

Everything is drawn on :class:`matplotlib.figure.Figure` objects directly (no
``pyplot``), so no global state or backend is touched and nothing needs a
display; ``Figure.savefig`` renders through Agg. Each ``save_*`` function
creates the parent folder, writes one PNG (or whatever the suffix says),
releases the figure and returns the :class:`pathlib.Path` written.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from lrrjax.errors import SceneError

MAP_CMAP = "jet"  # the colour map of HAD papers' detection-map figures
DPI = 120


def output_path(path) -> pathlib.Path:
  """``path`` as a Path, its folder created."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  return path


def write_figure(fig: Figure, path: pathlib.Path) -> pathlib.Path:
  """Saves ``fig`` at the package DPI, releases its artists, returns ``path``."""
  fig.savefig(path, dpi=DPI)
  fig.clear()
  return path


def _norm01(a) -> np.ndarray:
  """Min-max normalises the finite entries of ``a`` to [0, 1] (float64).

  Non-finite entries become NaN (drawn as blank); a constant array maps to 0.
  """
  a = np.asarray(a, dtype=np.float64)
  ok = np.isfinite(a)
  out = np.full(a.shape, np.nan)
  if not ok.any():
    return out
  lo, hi = a[ok].min(), a[ok].max()
  out[ok] = (a[ok] - lo) / (hi - lo) if hi > lo else 0.0
  return out


def _check_map(a, what: str) -> np.ndarray:
  a = np.asarray(a)
  if a.ndim != 2:
    raise SceneError(f"{what} must be 2-D (H, W), got shape {a.shape}")
  return a


def false_colour(cube_hwb, bands: Sequence[int] | None = None) -> np.ndarray:
  """False-colour RGB composite of a hyperspectral cube.

  Each of the three chosen bands is stretched linearly so that its 2nd and
  98th percentiles map to 0 and 1, then clipped to [0, 1] (falling back to its
  min/max when those percentiles coincide; a constant band gives 0).

  Args:
    cube_hwb: (H, W, B) array.
    bands: three band indices for (R, G, B). Default: the bands at 75 %, 50 %
      and 25 % of the band range, so the longest wavelength is red (bands are
      assumed to be in increasing wavelength).

  Returns:
    (H, W, 3) float64 array in [0, 1].

  Raises:
    SceneError: on a cube that is not 3-D or band indices out of range.
  """
  cube = np.asarray(cube_hwb)
  if cube.ndim != 3:
    raise SceneError(f"cube must be 3-D (H, W, B), got shape {cube.shape}")
  n_b = cube.shape[2]
  if bands is None:
    bands = [int(round(f * (n_b - 1))) for f in (0.75, 0.5, 0.25)]
  bands = [int(b) for b in bands]
  if len(bands) != 3 or any(not -n_b <= b < n_b for b in bands):
    raise SceneError(
        f"bands must be three indices in [0, {n_b}) for a cube of shape "
        f"{cube.shape}, got {bands}")
  rgb = np.zeros(cube.shape[:2] + (3,))
  for c, b in enumerate(bands):
    band = cube[:, :, b].astype(np.float64)
    ok = np.isfinite(band)
    if not ok.any():
      continue
    lo, hi = np.percentile(band[ok], [2.0, 98.0])
    if hi <= lo:
      lo, hi = band[ok].min(), band[ok].max()
    if hi > lo:
      rgb[:, :, c] = np.where(ok, np.clip((band - lo) / (hi - lo), 0.0, 1.0), 0.0)
  return rgb


def save_detection(path, cube_hwb, scores_hw, gt_hw=None, title: str = "") -> pathlib.Path:
  """Saves false-colour composite | score map (with colour bar) | ground truth.

  Args:
    path: output file (suffix picks the format, e.g. ``.png``).
    cube_hwb: (H, W, B) cube, or a :class:`lrrjax.io.Scene` (its ``cube`` is
      used, and its ``gt`` when ``gt_hw`` is not given).
    scores_hw: (H, W) detection scores (raw values on the colour bar).
    gt_hw: optional (H, W) binary ground truth; its panel is drawn if given.
      A string here is taken as ``title`` (the CONTRACTS.md call form
      ``save_detection(path, scene, scores_hw, title)``).
    title: figure title.

  Returns:
    The path written.
  """
  if isinstance(gt_hw, str):
    title, gt_hw = gt_hw, None
  if hasattr(cube_hwb, "cube"):
    if gt_hw is None:
      gt_hw = getattr(cube_hwb, "gt", None)
    cube_hwb = cube_hwb.cube
  path = output_path(path)
  rgb = false_colour(cube_hwb)
  scores = _check_map(scores_hw, "scores_hw")
  if scores.shape != rgb.shape[:2]:
    raise SceneError(
        f"scores_hw shape {scores.shape} does not match cube spatial shape "
        f"{rgb.shape[:2]}")
  panels = 2 if gt_hw is None else 3
  if gt_hw is not None:
    gt = _check_map(gt_hw, "gt_hw")
    if gt.shape != scores.shape:
      raise SceneError(
          f"gt_hw shape {gt.shape} does not match scores_hw shape {scores.shape}")
  fig = Figure(figsize=(4.0 * panels + 0.8, 4.2), layout="constrained")
  axes = fig.subplots(1, panels, squeeze=False)[0]
  axes[0].imshow(rgb, interpolation="nearest")
  axes[0].set_title("false colour")
  shown = np.where(np.isfinite(scores), scores, np.nan).astype(np.float64)
  im = axes[1].imshow(shown, cmap=MAP_CMAP, interpolation="nearest")
  axes[1].set_title("scores")
  fig.colorbar(im, ax=axes[1], shrink=0.85)
  if gt_hw is not None:
    axes[2].imshow(np.asarray(gt, dtype=np.float64), cmap="gray", vmin=0, vmax=1,
                   interpolation="nearest")
    axes[2].set_title("ground truth")
  for ax in axes:
    ax.set_axis_off()
  if title:
    fig.suptitle(title)
  return write_figure(fig, path)


def save_roc(path, curves: Mapping[str, tuple], title: str = "") -> pathlib.Path:
  """Saves ROC curves PD vs PF on a log PF axis (1e-4 .. 1), AUC in the legend.

  Points with PF below 1e-4 (including the (0, 0) start) are drawn at the left
  edge. The legend AUC is the trapezoid area of the given (pf, pd) points
  (equal to :func:`lrrjax.metrics.auc_df` for curves from
  :func:`lrrjax.metrics.roc_curve`).

  Args:
    path: output file.
    curves: name -> (pf, pd), equal-length 1-D arrays sorted by pf.
    title: axes title.

  Returns:
    The path written.
  """
  path = output_path(path)
  fig = Figure(figsize=(6.0, 4.8), layout="constrained")
  ax = fig.subplots()
  xmin = 1e-4
  for name, (pf, pd) in curves.items():
    pf = np.asarray(pf, dtype=np.float64).ravel()
    pd = np.asarray(pd, dtype=np.float64).ravel()
    if pf.shape != pd.shape:
      raise SceneError(
          f"curve {name!r}: pf shape {pf.shape} does not match pd shape {pd.shape}")
    auc = float(np.sum(np.diff(pf) * (pd[1:] + pd[:-1])) * 0.5)
    ax.plot(np.maximum(pf, xmin), pd, label=f"{name} (AUC={auc:.4f})", lw=1.5)
  ax.set_xscale("log")
  ax.set_xlim(xmin, 1.0)
  ax.set_ylim(0.0, 1.02)
  ax.set_xlabel("false-alarm rate $P_F$")
  ax.set_ylabel("detection probability $P_D$")
  ax.grid(True, which="both", alpha=0.3)
  if curves:
    ax.legend(loc="lower right", fontsize="small")
  if title:
    ax.set_title(title)
  return write_figure(fig, path)


def save_grid(path, rows: Sequence[str], cols: Sequence[str],
              maps: Mapping[tuple, np.ndarray],
              gts: Mapping[str, np.ndarray] | None = None) -> pathlib.Path:
  """Saves a grid of detection maps: rows = scenes, columns = methods.

  Each map is min-max normalised to [0, 1] on its own and drawn with one
  shared colour map; when ``gts`` is given, the first column is the ground
  truth. A missing (row, col) map leaves a blank, labelled "n/a", cell.

  Args:
    path: output file.
    rows: scene names (row order).
    cols: method names (column order).
    maps: (scene, method) -> (H, W) scores.
    gts: optional scene -> (H, W) binary ground truth.

  Returns:
    The path written.
  """
  path = output_path(path)
  rows, cols = list(rows), list(cols)
  if not rows or not cols:
    raise SceneError(f"save_grid needs at least one row and one column, got "
                     f"{len(rows)} rows and {len(cols)} columns")
  with_gt = gts is not None
  headers = (["ground truth"] if with_gt else []) + cols
  fig = Figure(figsize=(1.9 * len(headers) + 0.6, 1.9 * len(rows) + 0.4),
               layout="constrained")
  axes = fig.subplots(len(rows), len(headers), squeeze=False)
  im = None
  for i, r in enumerate(rows):
    for j, h in enumerate(headers):
      ax = axes[i, j]
      ax.set_xticks([])
      ax.set_yticks([])
      if with_gt and j == 0:
        a = gts.get(r)
        if a is not None:
          ax.imshow(np.asarray(_check_map(a, f"gt of {r!r}"), np.float64),
                    cmap="gray", vmin=0, vmax=1, interpolation="nearest")
      else:
        a = maps.get((r, h))
        if a is not None:
          im = ax.imshow(_norm01(_check_map(a, f"map ({r!r}, {h!r})")),
                         cmap=MAP_CMAP, vmin=0, vmax=1, interpolation="nearest")
      if a is None:
        ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
      if i == 0:
        ax.set_title(h, fontsize="small")
      if j == 0:
        ax.set_ylabel(r, fontsize="small")
  if im is not None:
    fig.colorbar(im, ax=axes, shrink=0.6, label="normalised score")
  return write_figure(fig, path)


def save_boxplot(path, rows: Sequence[str], cols: Sequence[str],
                 maps: Mapping[tuple, np.ndarray],
                 gts: Mapping[str, np.ndarray]) -> pathlib.Path:
  """Saves background-vs-anomaly separation box plots (one panel per scene).

  For every scene and method the score map is min-max normalised to [0, 1];
  two boxes show the background and anomaly pixels' normalised scores (box =
  quartiles, line = median, whiskers = 5th and 95th percentiles, no fliers).
  A detector separates well when the anomaly box sits high above a compact
  background box. Missing (scene, method) maps are skipped.

  Args:
    path: output file.
    rows: scene names (one panel each, stacked vertically).
    cols: method names (x-axis groups).
    maps: (scene, method) -> (H, W) scores.
    gts: scene -> (H, W) binary ground truth; required for every scene.

  Returns:
    The path written.
  """
  path = output_path(path)
  rows, cols = list(rows), list(cols)
  if not rows or not cols:
    raise SceneError(f"save_boxplot needs at least one row and one column, got "
                     f"{len(rows)} rows and {len(cols)} columns")
  fig = Figure(figsize=(max(4.0, 1.1 * len(cols) + 1.5), 2.8 * len(rows)),
               layout="constrained")
  axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
  colours = ("tab:blue", "tab:red")
  for ax, r in zip(axes, rows):
    if gts is None or gts.get(r) is None:
      raise SceneError(f"save_boxplot: no ground truth for scene {r!r}")
    gt = np.asarray(_check_map(gts[r], f"gt of {r!r}")).astype(bool)
    data, pos, face = [], [], []
    for j, c in enumerate(cols):
      a = maps.get((r, c))
      if a is None:
        continue
      a = _check_map(a, f"map ({r!r}, {c!r})")
      if a.shape != gt.shape:
        raise SceneError(f"map ({r!r}, {c!r}) shape {a.shape} does not match "
                         f"ground-truth shape {gt.shape}")
      z = _norm01(a)
      for k, sel in enumerate((~gt, gt)):
        v = z[sel]
        data.append(v[np.isfinite(v)])
        pos.append(3 * j + 1 + k)
        face.append(colours[k])
    keep = [k for k, d in enumerate(data) if d.size]
    if keep:
      bp = ax.boxplot([data[k] for k in keep], positions=[pos[k] for k in keep],
                      widths=0.8, whis=(5, 95), showfliers=False,
                      patch_artist=True, medianprops={"color": "black"})
      for patch, k in zip(bp["boxes"], keep):
        patch.set_facecolor(face[k])
        patch.set_alpha(0.7)
    ax.set_xticks([3 * j + 1.5 for j in range(len(cols))])
    ax.set_xticklabels(cols, rotation=30, ha="right", fontsize="small")
    ax.set_xlim(0, 3 * len(cols))
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("normalised score")
    ax.set_title(r, fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
  axes[0].legend(handles=[Patch(facecolor=colours[0], alpha=0.7, label="background"),
                          Patch(facecolor=colours[1], alpha=0.7, label="anomaly")],
                 loc="upper right", fontsize="small")
  return write_figure(fig, path)


def save_curves(path, x, ys: Mapping[str, np.ndarray], xlabel: str = "",
                ylabel: str = "", title: str = "", logy: bool = False) -> pathlib.Path:
  """Saves a generic line plot (training curves, convergence figures).

  Args:
    path: output file.
    x: 1-D x values shared by all curves, or None to use 0..len(y)-1 per curve.
    ys: name -> 1-D y values (same length as ``x`` when given).
    xlabel: x-axis label.
    ylabel: y-axis label.
    title: axes title.
    logy: log y-axis; non-positive values are masked (not drawn). If no curve
      has a positive finite value the axis stays linear.

  Returns:
    The path written.
  """
  path = output_path(path)
  fig = Figure(figsize=(6.0, 4.2), layout="constrained")
  ax = fig.subplots()
  any_pos = False
  xs = None if x is None else np.asarray(x, dtype=np.float64).ravel()
  for name, y in ys.items():
    y = np.asarray(y, dtype=np.float64).ravel()
    xv = np.arange(y.size) if xs is None else xs
    if xv.size != y.size:
      raise SceneError(f"curve {name!r} has {y.size} values but x has {xv.size}")
    any_pos |= bool(np.any(np.isfinite(y) & (y > 0)))
    ax.plot(xv, y, label=str(name), lw=1.5)
  if logy and any_pos:
    ax.set_yscale("log", nonpositive="mask")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.grid(True, which="both", alpha=0.3)
  if ys:
    ax.legend(fontsize="small")
  if title:
    ax.set_title(title)
  return write_figure(fig, path)
