"""`lrrjax benchmark`: every method on every scene of a folder (lrrjax.benchmark)."""

import pathlib

import numpy as np

from lrrjax.cli import common


def cmd_benchmark(args) -> int:
  from lrrjax import benchmark  # pylint: disable=import-outside-toplevel
  methods = common.split_list(args.methods) or list(common.DEFAULT_BENCHMARK_METHODS)
  progress = common.progress_fn(args) or False
  seeds = common.seed_list(args.seeds)
  if args.distributed:
    import jax  # pylint: disable=import-outside-toplevel
    jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
  if args.report_only:
    # Messages about missing cells / figures are always shown.
    records = benchmark.render_report(args.data_dir, methods, args.out,
                                      scenes=common.split_list(args.limit_scenes),
                                      progress=progress or True, seeds=seeds)
  else:
    records = benchmark.run_benchmark(args.data_dir, methods, args.out,
                                      scenes=common.split_list(args.limit_scenes),
                                      progress=progress, distributed=args.distributed,
                                      seeds=seeds)
  if args.distributed:
    import jax  # pylint: disable=import-outside-toplevel
    if jax.process_index() != 0:
      return 0
  aucs = {}
  for r in records:
    if "auc_df" in r:
      aucs.setdefault(r["method"], []).append(r["auc_df"])
  means = " ".join(f"{m}={np.mean(v):.4f}" for m, v in aucs.items())
  n_scenes = len({r["scene"] for r in records})
  print(f"benchmark: {n_scenes} scenes x {len(methods)} methods; mean AUC(D,F) "
        f"{means or '-'} -> {pathlib.Path(args.out) / 'results.md'}")
  return 0
