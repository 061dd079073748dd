"""AUC(D,F) and run time of the classical detectors on every scene in a folder.

Usage:
  python experiments/classical_table.py [--data-dir DIR] [--methods grx,lrx,crd,lrasr]
      [--out results/classical_table.json]

Scenes: every file of ``lrrjax.io.list_scenes(LRRJAX_DATA_DIR or ../shared/data)``,
loaded with their raw values as float32.  Each method runs with its registry
defaults (chosen once for all scenes, see notes/detectors.md), twice per scene:
the first time includes jit compilation for that scene shape, the second is a
warm call.  Prints a markdown table and writes a JSON file with every number,
package versions and the git revision.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

from lrrjax import detectors, io, metrics, provenance


def _timed(name, scene):
  t0 = time.perf_counter()
  scores = detectors.run_method(name, scene)
  return scores, time.perf_counter() - t0


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--data-dir", default=None)
  ap.add_argument("--methods", default="grx,lrx,crd,lrasr")
  ap.add_argument("--out", default="results/classical_table.json")
  args = ap.parse_args(argv)
  methods = [m for m in args.methods.split(",") if m]
  for m in methods:
    detectors.get_method(m)
  folder = pathlib.Path(args.data_dir) if args.data_dir else io.data_dir()
  rows = []
  specs = detectors.available_methods()
  prov = provenance.record()
  for path in io.list_scenes(folder):
    scene = io.load_scene(path)
    row = {"scene": scene.name, "shape": list(scene.shape)}
    for m in methods:
      s1, t1 = _timed(m, scene)
      s2, t2 = _timed(m, scene)
      row[m] = {"auc_df": metrics.auc_df(s2.ravel(), scene.gt.ravel()),
                "seconds_first": t1, "seconds_warm": t2,
                "max_abs_diff_between_calls": float(np.max(np.abs(s1 - s2)))}
      print(f"{scene.name} {m}: AUC {row[m]['auc_df']:.4f}  {t1:.1f}s / {t2:.1f}s",
            file=sys.stderr, flush=True)
    rows.append(row)
    # partial results after every scene, so an interrupted run keeps its numbers
    provenance.write_json(args.out, {"rows": rows, "complete": False, "data_dir": str(folder),
                                     "methods": {m: specs[m].description for m in methods},
                                     "provenance": prov})
  header = "| scene | " + " | ".join(f"{m} AUC | {m} s (1st / warm)" for m in methods) + " |"
  lines = [header, "|" + "---|" * (1 + 2 * len(methods))]
  for r in rows:
    cells = []
    for m in methods:
      cells += [f"{r[m]['auc_df']:.4f}", f"{r[m]['seconds_first']:.1f} / {r[m]['seconds_warm']:.1f}"]
    lines.append(f"| {r['scene']} | " + " | ".join(cells) + " |")
  cells = []
  for m in methods:
    cells += [f"**{np.mean([r[m]['auc_df'] for r in rows]):.4f}**",
              f"{np.sum([r[m]['seconds_warm'] for r in rows]):.0f} (sum warm)"]
  lines.append("| mean | " + " | ".join(cells) + " |")
  table = "\n".join(lines)
  print(table)
  out = {"rows": rows, "complete": True, "table_markdown": table, "data_dir": str(folder),
         "methods": {m: specs[m].description for m in methods}, "provenance": prov}
  provenance.write_json(args.out, out)
  print(f"wrote {args.out}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())
