"""`lrrjax suite make|verify`: the complex-scene benchmark suite (lrrjax.suite)."""

import pathlib
import time

from lrrjax.cli import common


def cmd_suite_make(args) -> int:
  from lrrjax.suite import make  # pylint: disable=import-outside-toplevel
  progress = common.progress_fn(args)
  t0 = time.perf_counter()
  manifest = make.make_suite(args.out, args.data, seed=args.seed, size=args.size,
                             scenes=common.split_list(args.scenes), progress=progress)
  seconds = time.perf_counter() - t0
  counts = make.composition(manifest)
  n_t = sum(r["n_targets"] for r in manifest["scenes"])
  print(f"suite {manifest['version']} (seed {manifest['seed']}, size "
        f"{manifest['size']}): {len(manifest['scenes'])} scenes, {n_t} targets "
        f"in {seconds:.1f}s -> {pathlib.Path(args.out) / 'suite.json'}")
  print("targets: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
  for ex in manifest.get("excluded", []):
    print(f"excluded {ex['name']}: {ex['reason']}")
  return 0


def cmd_suite_verify(args) -> int:
  from lrrjax import suite  # pylint: disable=import-outside-toplevel
  manifest = suite.verify(args.suite_dir)
  print(f"{args.suite_dir}: suite {manifest['version']} with "
        f"{len(manifest['scenes'])} scenes matches its manifest (sha256)")
  return 0
