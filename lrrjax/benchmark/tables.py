"""The benchmark's Markdown tables: AUC(D,F) with mean and average-rank rows,
the 3D-ROC areas, seconds, and seeds as ``mean ± std``."""

from typing import Sequence

import numpy as np
import scipy.stats


def auc_table(records: Sequence[dict], methods: Sequence[str],
              scenes: Sequence[str], key: str) -> np.ndarray:
  """(n_scenes, n_methods) float64 array of `key`; NaN where absent.

  Several records of one (scene, method) (one per seed) give their mean.
  """
  total = np.zeros((len(scenes), len(methods)))
  count = np.zeros((len(scenes), len(methods)))
  si = {s: i for i, s in enumerate(scenes)}
  mi = {m: j for j, m in enumerate(methods)}
  for r in records:
    if r["scene"] in si and r["method"] in mi and r.get(key) is not None:
      total[si[r["scene"]], mi[r["method"]]] += float(r[key])
      count[si[r["scene"]], mi[r["method"]]] += 1
  return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def seed_tables(records: Sequence[dict], method: str, scenes: Sequence[str],
                key: str) -> dict[int, np.ndarray]:
  """seed -> (n_scenes,) values of `key` for `method`'s seeded records (NaN where
  absent); empty when the method has no seeded record."""
  si = {s: i for i, s in enumerate(scenes)}
  out: dict[int, np.ndarray] = {}
  for r in records:
    seed = r.get("seed")
    if r["method"] != method or seed is None or r["scene"] not in si:
      continue
    t = out.setdefault(int(seed), np.full(len(scenes), np.nan))
    if r.get(key) is not None:
      t[si[r["scene"]]] = float(r[key])
  return dict(sorted(out.items()))


def seed_std_table(records: Sequence[dict], methods: Sequence[str],
                   scenes: Sequence[str], key: str) -> np.ndarray:
  """(n_scenes, n_methods) sample std (ddof 1) of `key` over each method's
  seeds; NaN where fewer than two seeds have a value."""
  t = np.full((len(scenes), len(methods)), np.nan)
  for j, m in enumerate(methods):
    per = seed_tables(records, m, scenes, key)
    if len(per) < 2:
      continue
    stack = np.stack(list(per.values()))               # (n_seeds, n_scenes)
    ok = ~np.isnan(stack)
    for i in range(len(scenes)):
      v = stack[ok[:, i], i]
      if v.size >= 2:
        t[i, j] = float(np.std(v, ddof=1))
  return t


def _seeded_mean_row(records, methods, scenes, rows_mask, mean_row):
  """Mean-row strings: ``mean ± std`` over seeds of the per-seed scene mean for
  seeded methods (every seed with all rows), else the plain mean."""
  out = []
  rows = [s for s, keep in zip(scenes, rows_mask) if keep]
  for j, m in enumerate(methods):
    per = seed_tables(records, m, rows, "auc_df")
    means = [float(np.mean(v)) for v in per.values() if not np.isnan(v).any()]
    if len(means) >= 2 and len(means) == len(per):
      out.append(f"{np.mean(means):.4f} ± {np.std(means, ddof=1):.4f}")
    else:
      out.append(_fmt(mean_row[j]))
  return out


def _fmt_pm(v: float, sd: float) -> str:
  return _fmt(v) if np.isnan(sd) or np.isnan(v) else f"{v:.4f} ± {sd:.4f}"


def _seed_note(records: Sequence[dict], methods: Sequence[str]) -> list[str]:
  seeded = {m: sorted({int(r["seed"]) for r in records
                       if r["method"] == m and r.get("seed") is not None})
            for m in methods}
  seeded = {m: v for m, v in seeded.items() if v}
  if not seeded:
    return []
  txt = "; ".join(f"{m}: seeds {', '.join(map(str, v))}" for m, v in seeded.items())
  return [f"Seeded methods ({txt}): mean over seeds ± sample std (ddof 1); "
          "their Mean row is the mean ± std over seeds of the per-seed mean "
          "over scenes; ranks and the other tables use the per-scene means.", ""]


def average_ranks(table: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
  """Mean over rows of each column's rank within its row (1 = best, ties averaged).

  Rows containing NaN are left out.
  """
  rows = table[~np.isnan(table).any(axis=1)]
  if rows.size == 0:
    return np.full(table.shape[1], np.nan)
  signed = -rows if higher_is_better else rows
  ranks = scipy.stats.rankdata(signed, method="average", axis=1)
  return ranks.mean(axis=0)


def _col_mean(t: np.ndarray) -> np.ndarray:
  """Column means ignoring NaN; NaN for an all-NaN column (no warning)."""
  n = np.sum(~np.isnan(t), axis=0)
  s = np.nansum(t, axis=0)
  return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _col_sum(t: np.ndarray) -> np.ndarray:
  n = np.sum(~np.isnan(t), axis=0)
  return np.where(n > 0, np.nansum(t, axis=0), np.nan)


def _fmt(v: float, digits: int = 4) -> str:
  return "—" if np.isnan(v) else f"{v:.{digits}f}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
  lines += ["| " + " | ".join(r) + " |" for r in rows]
  return lines


def render_readme_table(records: Sequence[dict], methods: Sequence[str],
                        scenes: Sequence[str]) -> str:
  """The AUC(D,F) table in README.md's layout: scenes with ground truth, best
  of each scene in bold, then a bold `mean` row and an `average rank` row."""
  methods, scenes = list(methods), list(scenes)
  df = auc_table(records, methods, scenes, "auc_df")
  sd = seed_std_table(records, methods, scenes, "auc_df")
  gt_rows = ~np.isnan(df).all(axis=1)
  rows = []
  for i, s in enumerate(scenes):
    if gt_rows[i]:
      best = np.max(df[i][~np.isnan(df[i])])
      rows.append([s] + [(f"**{_fmt_pm(v, e)}**" if v == best else _fmt_pm(v, e))
                         for v, e in zip(df[i], sd[i])])
  if gt_rows.any():
    rows.append(["**mean**"] + _seeded_mean_row(records, methods, scenes, gt_rows,
                                                _col_mean(df[gt_rows])))
    rows.append(["average rank"] + [_fmt(v, 2) for v in average_ranks(df[gt_rows])])
  return "\n".join(_md_table(["scene"] + methods, rows)) + "\n"


def render_markdown(records: Sequence[dict], methods: Sequence[str],
                    scenes: Sequence[str]) -> str:
  """results.md text: AUC(D,F) table with Mean and average-rank rows, the
  AUC(F,tau) / AUC_ODP / AUC_SNPR table and the seconds table.

  The best AUC(D,F) of each scene is bold (ties all bold). The Mean row is the
  plain mean over scenes with ground truth.
  """
  methods, scenes = list(methods), list(scenes)
  df = auc_table(records, methods, scenes, "auc_df")
  sd = seed_std_table(records, methods, scenes, "auc_df")
  gt_rows = ~np.isnan(df).all(axis=1)
  lines = ["# Benchmark results", "",
           f"{len(scenes)} scenes x {len(methods)} methods. Scores are computed "
           "with each method's default parameters (one setting for all scenes); "
           "ground truth is used only to score.", "",
           "## AUC(D,F) (area under the ROC curve, higher is better)", ""]
  rows = []
  for i, s in enumerate(scenes):
    if not gt_rows[i]:
      continue
    best = np.max(df[i][~np.isnan(df[i])])
    rows.append([s] + [(f"**{_fmt_pm(v, e)}**" if v == best else _fmt_pm(v, e))
                       for v, e in zip(df[i], sd[i])])
  if gt_rows.any():
    mean = _col_mean(df[gt_rows])
    rows.append(["Mean"] + _seeded_mean_row(records, methods, scenes, gt_rows, mean))
    rows.append(["Average rank"] + [_fmt(v, 2) for v in average_ranks(df[gt_rows])])
  lines += _md_table(["scene"] + methods, rows)
  lines += ["", "Average rank: rank of each method within a scene by AUC(D,F) "
            "(1 = best, ties averaged), averaged over scenes.", ""]
  lines += _seed_note(records, methods)

  ft = auc_table(records, methods, scenes, "auc_ft")
  odp = auc_table(records, methods, scenes, "auc_odp")
  snpr = auc_table(records, methods, scenes, "auc_snpr")
  lines += ["## AUC(F,tau) / AUC_ODP / AUC_SNPR", "",
            "AUC(F,tau): background false-alarm area (lower is better); "
            "AUC_ODP = AUC(D,F) + AUC(D,tau) - AUC(F,tau) (higher is better); "
            "AUC_SNPR = AUC(D,tau) / AUC(F,tau) (higher is better).", ""]
  rows = []
  for i, s in enumerate(scenes):
    if gt_rows[i]:
      rows.append([s] + [f"{_fmt(ft[i, j])} / {_fmt(odp[i, j])} / "
                         f"{_fmt(snpr[i, j], 2)}" for j in range(len(methods))])
  if gt_rows.any():
    m_ft, m_odp, m_snpr = (_col_mean(t[gt_rows]) for t in (ft, odp, snpr))
    rows.append(["Mean"] + [f"{_fmt(m_ft[j])} / {_fmt(m_odp[j])} / "
                            f"{_fmt(m_snpr[j], 2)}" for j in range(len(methods))])
  lines += _md_table(["scene"] + methods, rows)
  lines += [""]

  sec = auc_table(records, methods, scenes, "seconds")
  lines += ["## Seconds (wall clock per scene, JIT compilation included)", ""]
  rows = [[s] + [_fmt(v, 2) for v in sec[i]] for i, s in enumerate(scenes)]
  rows.append(["Total"] + [_fmt(v, 2) for v in _col_sum(sec)])
  lines += _md_table(["scene"] + methods, rows)
  lines += [""]
  return "\n".join(lines)
