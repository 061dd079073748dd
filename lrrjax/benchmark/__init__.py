"""Every method on every scene of a folder: resumable cells, tables and figures.

Layout of `out_dir`:

  cells/<scene>__<method>.json   one record per (scene, method), written as each finishes
  cells/<scene>__<method>.npy    its (H, W) float32 score map
  cells/<scene>__<method>@seed<s>.{json,npy}
                                 with ``seeds``: one cell per seed of a method that
                                 takes a ``seed`` parameter (auto-ad, gt-had, ...)
  results.json                   {"records": [...], "provenance": {...}}
  results.md                     AUC(D,F) table (+ Mean and average-rank rows),
                                 AUC(F,tau) / AUC_ODP / AUC_SNPR table, seconds table
  readme_table.md                the AUC(D,F) table in the README's layout
  grid.png                       rows scenes, columns ground truth then methods
  roc/<scene>.png                ROC curves of all methods on one scene
  stratified.png                 (suite folders) Pd vs fill fraction and size per method
  boxplot.png                    background vs anomaly normalised-score boxes,
                                 one panel per scene (scenes with ground truth)

A suite folder (lrrjax.suite: `suite.json` beside the scenes) is verified
against its manifest first (sha256 of every file) and the report adds the
detection rate at FAR 1e-3 / 1e-2 per target size, fill-fraction bin and
context (`stratified` in results.json, a table in results.md). Its cells
record the scene file's sha256 (`scene_sha256`); a cached cell whose sha256
differs from the manifest's (the suite was remade) is recomputed.

Resume: a cell whose .json and .npy both exist, computed with the same method
parameters, is read back, not recomputed.

Report only: :func:`render_report` rewrites results.json, results.md and
readme_table.md from the cell records (.json) alone, e.g. after cells were
added by another run or copied from another machine; the figures are redrawn
only when every score map (.npy) they need is present.
Delete a cell's files to recompute it. A failing method raises (after the cells
finished before it have been saved).

Seeds: with ``seeds=[0, 1, 2]`` (CLI ``--seeds 0,1,2``) every method whose
function takes a ``seed`` parameter runs once per seed (``seed`` added to its
parameters, the record's ``seed`` key set, cell ``<scene>__<method>@seed<s>``);
methods without one run once, in the same cells as a run without seeds, so
cached seedless cells stay valid. The tables then show, for a seeded method,
the mean over its seeds and ``± std`` (sample standard deviation, ddof 1) per
scene; its Mean row is the mean over seeds of the per-seed mean over scenes, ±
the std over seeds of that per-seed mean. Ranks use the per-scene means. The
figures use the first seed's score maps.

Modules: ``cells`` (one cell: run, save, resume; seed variants), ``run``
(:func:`run_benchmark`, :func:`render_report`), ``tables`` (the Markdown
tables, average ranks).
"""

from lrrjax.benchmark.cells import ROC3D_KEYS, cell_stem, check_seeds, run_cell, takes_seed
from lrrjax.benchmark.run import join_records, render_report, run_benchmark
from lrrjax.benchmark.tables import (auc_table, average_ranks, render_markdown,
                                     render_readme_table, seed_std_table, seed_tables)

__all__ = ["ROC3D_KEYS", "auc_table", "average_ranks", "cell_stem", "check_seeds", "join_records",
           "render_markdown", "render_readme_table", "render_report", "run_benchmark",
           "run_cell", "seed_std_table", "seed_tables", "takes_seed"]
