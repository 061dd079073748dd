"""Stratified scoring of a suite: detection rate at fixed false-alarm rates per stratum.

For one scene and one method with scores ``y`` and background pixels
``Bg = {p : gt(p) = 0}`` (``n`` pixels), the threshold at false-alarm rate
``a`` is the ``(k + 1)``-th largest background score, ``k = floor(a n)``:

  ``tau_a = sort_desc(y[Bg])[k]``,  so  ``#{p in Bg : y(p) > tau_a} <= a n``.

A target's detection rate is the fraction of its pixels scoring above
``tau_a`` (1 or 0 for a 1x1 target; partial detection of a 15x15 object
counts partially). A stratum's ``pd_at_far_<a>`` is the mean over its targets
(each target weighs the same), pooled over the suite's scenes with each
scene's own threshold. Strata: ``all``; ``size=KxK``; the fill-fraction bins
(``fill=0.1-0.2``, ``fill=1.0``) and the pooled sub-pixel stratum
``fill=0.05-0.5``; ``context=near-bright`` / ``context=open``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from lrrjax.errors import SceneError
from lrrjax.suite import implant

FARS = (1e-3, 1e-2)
SUBPIXEL = "fill=0.05-0.5"


def far_key(far: float) -> str:
  """`pd_at_far_1e-3` for 0.001."""
  return f"pd_at_far_{far:.0e}".replace("e-0", "e-")


KEYS = tuple(far_key(a) for a in FARS)


def threshold(scores_bg: np.ndarray, far: float) -> float:
  """The background threshold ``tau_a`` (module docstring)."""
  s = np.sort(np.asarray(scores_bg, np.float64).ravel())[::-1]
  if s.size == 0:
    raise SceneError("stratified scoring needs background pixels")
  return float(s[min(int(math.floor(far * s.size)), s.size - 1)])


def target_rates(scores_hw: np.ndarray, gt_hw: np.ndarray,
                 targets: Sequence[dict[str, Any]], fars=FARS) -> np.ndarray:
  """(n_targets, len(fars)) fraction of each target's pixels above ``tau_a``."""
  scores = np.asarray(scores_hw, np.float64)
  gt = np.asarray(gt_hw, bool)
  if scores.shape != gt.shape:
    raise SceneError(f"scores {scores.shape} and ground truth {gt.shape} differ")
  taus = np.array([threshold(scores[~gt], a) for a in fars])
  out = np.zeros((len(targets), len(fars)))
  for i, t in enumerate(targets):
    r, c, s = t["row"], t["col"], t["size"]
    patch = scores[r:r + s, c:c + s].reshape(-1, 1)
    out[i] = (patch > taus[None]).mean(axis=0)
  return out


def strata_of(target: dict[str, Any]) -> list[str]:
  """The strata a target counts in."""
  fill = implant.fill_bin_of(target["fill"])
  keys = ["all", f"size={target['size']}x{target['size']}", fill]
  if target["fill"] < 0.5:
    keys.append(SUBPIXEL)
  keys.append(f"context={target['context']}")
  return keys


def _order(stratum: str) -> tuple:
  kind, _, value = stratum.partition("=")
  rank = {"all": 0, "size": 1, "fill": 2, "context": 3}.get(kind, 4)
  if kind == "size":
    return rank, int(value.split("x")[0]), ""
  if kind == "fill":
    lo, _, hi = value.partition("-")
    return rank, float(lo) + (0.001 if hi else 0) + (10 if value == "0.05-0.5" else 0), value
  return rank, 0, value


def stratified_records(manifest: dict[str, Any],
                       scores: dict[tuple[str, str], np.ndarray],
                       gts: dict[str, np.ndarray], methods: Sequence[str],
                       scenes: Sequence[str]) -> list[dict[str, Any]]:
  """Per method and stratum: pd at each FAR and the target count.

  Args:
    manifest: the suite manifest (manifest.verify()).
    scores: (scene, method) -> (H, W) scores.
    gts: scene -> (H, W) bool ground truth.
    methods, scenes: what was run (scene = file stem); scenes not in the
      manifest are ignored.

  Returns:
    Records {method, stratum, pd_at_far_1e-3, pd_at_far_1e-2, n_targets},
    method-major, strata in a fixed order (all, sizes, fills, contexts).
  """
  by_stem = {rec["file"].rsplit(".", 1)[0]: rec for rec in manifest["scenes"]}
  out = []
  for m in methods:
    acc: dict[str, list[np.ndarray]] = {}
    for s in scenes:
      rec = by_stem.get(s)
      if rec is None or not rec["targets"]:
        continue
      rates = target_rates(scores[(s, m)], gts[s], rec["targets"])
      for t, row in zip(rec["targets"], rates):
        for key in strata_of(t):
          acc.setdefault(key, []).append(row)
    for key in sorted(acc, key=_order):
      rows = np.array(acc[key])
      out.append({"method": m, "stratum": key,
                  **{k: float(v) for k, v in zip(KEYS, rows.mean(axis=0))},
                  "n_targets": int(rows.shape[0])})
  return out


def _table(records, methods):
  strata = sorted({r["stratum"] for r in records}, key=_order)
  cell = {(r["method"], r["stratum"]): r for r in records}
  return strata, cell


def best(records: Sequence[dict], stratum: str, key: str = KEYS[1]
         ) -> tuple[list[str], float] | None:
  """(methods with the highest `key` in `stratum`, that value), or None."""
  rows = [r for r in records if r["stratum"] == stratum]
  if not rows:
    return None
  top = max(r[key] for r in rows)
  return [r["method"] for r in rows if r[key] == top], top


def render_markdown(records: Sequence[dict], methods: Sequence[str],
                    manifest: dict[str, Any]) -> str:
  """The results.md section: the stratified table and who finds what."""
  strata, cell = _table(records, methods)
  n_tgt = {r["stratum"]: r["n_targets"] for r in records}
  lines = ["## Detection rate per stratum (suite "
           f"{manifest.get('version')}, seed {manifest.get('seed')}, "
           f"size {manifest.get('size')})", "",
           "Each cell: Pd at FAR 1e-3 / Pd at FAR 1e-2. Pd of a target = fraction "
           "of its pixels above the scene's background threshold at that false-alarm "
           "rate; a stratum's Pd = mean over its targets. `fill=0.05-0.5` pools the "
           "sub-pixel bins.", ""]
  header = ["stratum", "targets"] + list(methods)
  rows = []
  for s in strata:
    vals = [cell.get((m, s)) for m in methods]
    top = max((v[KEYS[1]] for v in vals if v), default=None)
    row = [s, str(n_tgt[s])]
    for v in vals:
      if v is None:
        row.append("—")
        continue
      txt = f"{v[KEYS[0]]:.2f} / {v[KEYS[1]]:.2f}"
      row.append(f"**{txt}**" if v[KEYS[1]] == top else txt)
    rows.append(row)
  lines += ["| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
  lines += ["| " + " | ".join(r) + " |" for r in rows]
  lines += ["", "Bold: the highest Pd at FAR 1e-2 in the row.", ""]
  for label, stratum in (("Sub-pixel targets (fill < 0.5)", SUBPIXEL),
                         ("Full-pixel targets (fill = 1)", "fill=1.0"),
                         ("Single pixels (1x1)", "size=1x1"),
                         (f"Large objects ({implant.LARGE}x{implant.LARGE})",
                          f"size={implant.LARGE}x{implant.LARGE}"),
                         ("Next to large bright structures", "context=near-bright")):
    b = best(records, stratum)
    if b is not None:
      lines.append(f"- {label}: best at FAR 1e-2 is {', '.join(b[0])} "
                   f"(Pd {b[1]:.2f}, {n_tgt[stratum]} targets).")
  lines.append("")
  return "\n".join(lines)


def save_figure(path, records: Sequence[dict], methods: Sequence[str]):
  """stratified.png: Pd vs fill-fraction bin and vs size, per method, at both FARs."""
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  from lrrjax import plots  # pylint: disable=import-outside-toplevel
  path = plots.output_path(path)
  strata, cell = _table(records, methods)
  fills = [s for s in strata if s.startswith("fill=") and s != SUBPIXEL]
  sizes = [s for s in strata if s.startswith("size=")]
  fig = Figure(figsize=(11.0, 7.0), layout="constrained")
  axes = fig.subplots(2, 2, sharey=True)
  for i, key in enumerate(KEYS):
    for j, (xs, xlabel) in enumerate(((fills, "fill fraction"),
                                      (sizes, "target size"))):
      ax = axes[i, j]
      for m in methods:
        ys = [cell[(m, s)][key] if (m, s) in cell else np.nan for s in xs]
        ax.plot(range(len(xs)), ys, marker="o", lw=1.5, label=m)
      ax.set_xticks(range(len(xs)), [s.split("=", 1)[1] for s in xs])
      ax.set_xlabel(xlabel)
      ax.set_ylabel(f"Pd at FAR {FARS[i]:g}")
      ax.set_ylim(-0.02, 1.02)
      ax.grid(True, alpha=0.3)
  axes[0, 0].legend(fontsize="small")
  fig.suptitle("Detection rate vs fill fraction and size (suite)")
  return plots.write_figure(fig, path)
