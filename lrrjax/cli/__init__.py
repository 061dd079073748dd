"""The `lrrjax` command: detect, info, train, benchmark, export, suite.

One module per command (`detect_cmd`, `train_cmd`, `benchmark_cmd`,
`export_cmd`, `suite_cmd`) and the shared helpers (`common`); the library
functions a script may call are re-exported here.

  lrrjax detect SCENE [--method M] [--out DIR] [--key K] [--gt-key G]
                      [--checkpoint WORKDIR] [--seed N] [--set key=value ...]
                      [--tile-rows N] [--memory-budget SIZE] [--progress]
  lrrjax info SCENE [--key K] [--gt-key G]
  lrrjax train SCENE|DATA_DIR --workdir DIR [--key K] [--gt-key G] [--seed N] [--set key=value ...]
                     [--export FILE]
                     [--allow-suite-data]
  lrrjax benchmark DATA_DIR --out DIR [--methods m1,m2,...] [--limit-scenes a,b] [--report-only]
                   [--seeds 0,1,2]
  lrrjax export --out FILE [--checkpoint DIR] [--platforms cpu,cuda,tpu]
  lrrjax export --check FILE
  lrrjax suite make OUT [--data DIR] [--seed S] [--size small|full] [--scenes a,b]
  lrrjax suite verify SUITE_DIR

SCENE is a file (.mat, .npy, .npz, ENVI .hdr) or the word `synthetic`.
detect/info/train take band options: --bands LIST (keep), --bad-bands LIST
(drop; LIST = 0-based indices and inclusive ranges, "0-99,120-149"); constant
(zero-variance) bands are dropped with a one-line notice on stderr unless
--keep-constant-bands. `detect` scores a cube larger than the memory budget
strip by strip (methods with a tiled form, lrrjax.streaming) and writes
scores.npy memory-mapped. Progress (rate, ETA) goes to stderr on a terminal,
or anywhere with --progress.
Compiled programs are kept in JAX's persistent compilation cache
(~/.cache/lrrjax/jax; LRRJAX_COMPILE_CACHE=DIR or off), so a repeated command
on a scene of the same shape skips compilation.
User errors (lrrjax.errors.LrrjaxError, a missing file) print `error: <message>`
on stderr and exit with status 2, without a traceback.
"""

import argparse
import sys
from typing import Sequence

from lrrjax.cli import benchmark_cmd, common, detect_cmd, export_cmd, suite_cmd, train_cmd
from lrrjax.cli.common import (DEFAULT_BENCHMARK_METHODS, DEFAULT_METHOD, TRAINED_METHODS,
                               apply_overrides, band_options, load, parse_sets, parse_size,
                               parse_value)
from lrrjax.cli.detect_cmd import detect, info, open_for_detect, summary_line
from lrrjax.cli.train_cmd import train, train_folder, train_progress
from lrrjax.errors import LrrjaxError

__all__ = ["DEFAULT_BENCHMARK_METHODS", "DEFAULT_METHOD", "TRAINED_METHODS", "apply_overrides",
           "band_options", "build_parser", "detect", "info", "load", "main", "open_for_detect",
           "parse_sets", "parse_size", "parse_value", "summary_line", "train", "train_folder",
           "train_progress"]


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="lrrjax", description="Hyperspectral anomaly detection (LRR-Net+ and "
      "classical detectors) in JAX.")
  sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

  q = sub.add_parser("detect", help="score one scene with one method")
  common.add_scene_args(q)
  q.add_argument("--method", default=common.DEFAULT_METHOD,
                 help=f"registry name (default {common.DEFAULT_METHOD})")
  q.add_argument("--out", default=None, help="output folder (default runs/<scene>-<method>)")
  q.add_argument("--checkpoint", default=None, metavar="WORKDIR",
                 help="use LRR-Net+ parameters trained by `lrrjax train`")
  q.add_argument("--finetune", action="store_true",
                 help="lrrnet-plus: train on this scene (unsupervised) instead of using the "
                      "shipped cross-scene parameters; --set takes LRR config keys")
  q.add_argument("--seed", type=int, default=None, help="method seed (passed as its `seed` parameter)")
  q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="method parameter override (repeatable; dotted keys for LRR config)")
  q.add_argument("--tile-rows", dest="tile_rows", type=int, default=None, metavar="N",
                 help="score N rows at a time (methods with a tiled form; default: "
                      "whole scene when it fits the memory budget, else strips sized "
                      "to it)")
  q.add_argument("--memory-budget", dest="memory_budget", default=None, metavar="SIZE",
                 help="memory for the cube and its working arrays, e.g. 2048 (MiB), "
                      "512M, 2G (default 2G)")
  common.add_progress_arg(q)
  q.set_defaults(func=detect_cmd.cmd_detect)

  q = sub.add_parser("info", help="describe a scene file")
  common.add_scene_args(q)
  q.set_defaults(func=detect_cmd.cmd_info)

  q = sub.add_parser("train", help="train LRR-Net+ across a folder of scenes (one network "
                     "for every scene) or on one scene, with checkpoints")
  common.add_scene_args(q)
  q.add_argument("--export", default=None, metavar="FILE",
                 help="folder training: also write the parameter file here")
  q.add_argument("--workdir", required=True, help="checkpoint folder (resumed if present)")
  q.add_argument("--seed", type=int, default=None)
  q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="LRR config override, e.g. train.steps=50 (repeatable)")
  q.add_argument("--allow-suite-data", dest="allow_suite_data", action="store_true",
                 help="train on a benchmark-suite scene anyway; marks the run not "
                      "comparable (suites are built from real ground truth)")
  common.add_progress_arg(q)
  q.set_defaults(func=train_cmd.cmd_train)

  q = sub.add_parser("benchmark", help="every method on every scene of a folder")
  q.add_argument("data_dir", metavar="DATA_DIR")
  q.add_argument("--methods", default=None,
                 help=f"comma-separated (default {','.join(common.DEFAULT_BENCHMARK_METHODS)})")
  q.add_argument("--out", required=True, help="output folder (resumed if present)")
  q.add_argument("--limit-scenes", dest="limit_scenes", default=None,
                 help="comma-separated scene names (file stems)")
  q.add_argument("--report-only", dest="report_only", action="store_true",
                 help="run nothing: rewrite results.json, results.md and readme_table.md "
                      "from the cell records in --out (figures only if every score map is there)")
  q.add_argument("--seeds", default=None,
                 help="comma-separated seeds: methods taking a `seed` parameter "
                      "(auto-ad, gt-had, ...) run once per seed, cells "
                      "<scene>__<method>@seed<s>; tables show mean ± std")
  q.add_argument("--distributed", action="store_true",
                 help="split the scenes over jax.distributed processes (results "
                      "joined once, written by process 0)")
  q.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                 help="jax.distributed coordinator (default: from the environment)")
  q.add_argument("--num-processes", dest="num_processes", type=int, default=None)
  q.add_argument("--process-id", dest="process_id", type=int, default=None)
  common.add_progress_arg(q)
  q.set_defaults(func=benchmark_cmd.cmd_benchmark)

  export_cmd.add_parser(sub)
  q = sub.add_parser("suite", help="the complex-scene benchmark suite (make, verify)")
  ssub = q.add_subparsers(dest="suite_command", required=True, metavar="ACTION")
  r = ssub.add_parser("make", help="write a deterministic suite folder with suite.json")
  r.add_argument("out", metavar="OUT", help="output folder (absent, empty or this suite)")
  r.add_argument("--data", default=None, metavar="DIR",
                 help="source scenes (default LRRJAX_DATA_DIR / ../shared/data)")
  r.add_argument("--seed", type=int, default=0)
  r.add_argument("--size", choices=("small", "full"), default="small")
  r.add_argument("--scenes", default=None,
                 help="comma-separated host scenes (default: every scene that can host)")
  common.add_progress_arg(r)
  r.set_defaults(func=suite_cmd.cmd_suite_make)
  r = ssub.add_parser("verify", help="check a suite folder against its manifest")
  r.add_argument("suite_dir", metavar="SUITE_DIR")
  r.set_defaults(func=suite_cmd.cmd_suite_verify)
  return p


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the `lrrjax` console script; returns the exit status."""
  args = build_parser().parse_args(argv)
  common.enable_compile_cache()
  try:
    return args.func(args)
  except (LrrjaxError, FileNotFoundError) as e:
    msg = str(e)
    if isinstance(e, FileNotFoundError) and e.filename and e.filename not in msg:
      msg = f"{msg}: {e.filename}"
    print(f"error: {msg}", file=sys.stderr)
    return 2

