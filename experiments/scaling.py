"""Scaling of `lrrjax detect` with the scene size: seconds, pixels/s, peak RSS.

  python experiments/scaling.py --out results/scaling --data /tmp/lrrjax_scaling \
      [--sizes 100,256,512,1024,2048] [--bands 200] [--methods grx,lrrnet-plus] \
      [--max-size method=SIZE ...] [--memory-budget 2G] [--flop-rate]

For each size S, a synthetic S x S x B float32 cube is written once to
``DATA/cube_S.npy`` (never in the repository): up to 512 x 512 it is
``lrrjax.synthetic.make_scene(S, S, B, n_targets=max(4, S*S // 4096), seed=S)``;
larger cubes are a mosaic of 512 x 512 blocks, block k made with seed
``S + k`` (different backgrounds side by side, like land covers along a flight
line; written strip by strip through a memory map, so generation needs about
one block of memory). Each (size, method) is a fresh
``python -m lrrjax.cli detect cube_S.npy --method M`` subprocess; its peak RSS
is the child's own high-water mark (VmHWM at exit), its seconds the method time the
command reports (loading and scoring, JIT compilation included, Python
start-up and figures excluded) and the wall clock of the whole command.

A method ``lrrnet-plus+finetune`` is ``--method lrrnet-plus --finetune`` (the
per-scene trained path; the default ``lrrnet-plus`` is the shipped network).

The machine's float32 matmul rate (GFLOP/s, best of 5 ``jnp.dot`` of 2048 x
2048 matrices, jit-compiled) is measured once and recorded. For the shipped
LRR-Net+, :func:`lrrnet_flop_rate` times one strip in process (the stages
alone, and the stages plus the per-pixel features) and divides the matmul
FLOPs it must do by the time: per pixel and stage ``6 B K + 4 K^2`` (three
B x K products and two K x K ones); elementwise work, the median bisections
and the box sums are not counted, so the ratio to the matmul rate is an upper
bound on the distance to the hardware limit.

Records already in ``OUT/scaling.json`` for other (size, method) pairs are
kept, so sizes and methods can be run in several invocations.
Writes ``OUT/scaling.json`` (records + provenance), ``OUT/scaling.md`` (table)
and ``OUT/scaling.png`` (log-log seconds and pixels/s against pixels).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
BLOCK = 512


def write_cube(path: pathlib.Path, size: int, bands: int) -> None:
  """Writes the S x S x B synthetic cube described in the module docstring."""
  from lrrjax import synthetic  # pylint: disable=import-outside-toplevel
  tmp = path.with_suffix(".tmp.npy")
  if size <= BLOCK:
    s = synthetic.make_scene(size, size, bands, n_targets=max(4, size * size // 4096),
                             seed=size)
    np.save(tmp, s.cube)
  else:
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                    shape=(size, size, bands))
    k = 0
    for r in range(0, size, BLOCK):
      for c in range(0, size, BLOCK):
        h, w = min(BLOCK, size - r), min(BLOCK, size - c)
        s = synthetic.make_scene(h, w, bands, n_targets=max(4, h * w // 4096),
                                 seed=size + k)
        out[r:r + h, c:c + w] = s.cube
        k += 1
      out.flush()
    del out
  os.replace(tmp, path)


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
  """Best float32 ``n x n @ n x n`` rate of this machine (GFLOP/s, 2 n^3 flops)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    f(a).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2 * n ** 3 / best / 1e9


# The child reports its own peak RSS (VmHWM of /proc/self/status at exit):
# ``ru_maxrss`` from wait4 is not usable here, because Linux carries the
# high-water mark of the forking process over fork + execve, so every child
# would report at least this script's own peak (e.g. after make_scene).
_CHILD = """
import atexit, os, sys
def _hwm():
  with open("/proc/self/status") as f:
    kib = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
  with open(os.environ["LRRJAX_HWM_FILE"], "w") as f:
    f.write(str(kib))
atexit.register(_hwm)
from lrrjax import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def best_seconds(f, repeats: int) -> float:
  """Best wall seconds of ``repeats`` warm calls of ``f`` (one call first, to
  compile; results waited for with ``jax.block_until_ready``)."""
  import jax  # pylint: disable=import-outside-toplevel
  jax.block_until_ready(f())
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(f())
    times.append(time.perf_counter() - t0)
  return min(times)


def lrrnet_flop_rate(cube: pathlib.Path, rows: int = 64, repeats: int = 3) -> dict:
  """In-process FLOP rate of the shipped LRR-Net+ on one strip of ``cube`` (.npy).

  Returns a record with the strip's pixels, the matmul FLOPs per pixel, the
  best warm seconds of the stages (:func:`lrrjax.lrr.tiled.apply_frozen_devices`) and
  of the whole strip (stages and per-pixel features), and the GFLOP/s of each.
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from lrrjax.io import stream  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import tiled  # pylint: disable=import-outside-toplevel
  arr = np.load(cube, mmap_mode="r")
  h, w, b = arr.shape
  strip = np.ascontiguousarray(arr[:rows], dtype=np.float32)
  stats = stream.stream_stats(arr, 256, covariance=True,
                              noise_rows=tiled.noise_rows(h, w))
  state = tiled.fit(stats)
  t, _, k = state.ops.d_bk.shape
  ops = jax.tree.map(jnp.asarray, state.ops)
  x_nb = jnp.asarray((strip.reshape(-1, b) - state.lo) / state.span) * state.omega_b
  stages = jax.jit(tiled.apply_frozen_devices)  # as the strips run them (pixel blocks)
  best = lambda f: best_seconds(f, repeats)  # noqa: E731

  # the machine is shared: the matmul rate is measured around the strip timings
  # (best of both), so the ratio compares rates taken under the same load
  rate0 = matmul_gflops()
  s_stages = best(lambda: stages(x_nb, ops))
  s_strip = best(lambda: tiled.score(state, strip))
  rate1 = matmul_gflops()
  n = rows * w
  flops_px = t * (6 * b * k + 4 * k * k)
  matmul = max(rate0, rate1)
  out = {"strip": f"{rows} x {w} x {b}", "pixels": n, "stages": int(t), "atoms": int(k),
         "matmul_flops_per_pixel": flops_px,
         "stages_seconds": s_stages, "strip_seconds": s_strip,
         "stages_gflops": flops_px * n / s_stages / 1e9,
         "strip_gflops": flops_px * n / s_strip / 1e9,
         "matmul_gflops_around": [rate0, rate1]}
  out["ratio_stages"] = matmul / out["stages_gflops"]
  out["ratio_strip"] = matmul / out["strip_gflops"]
  return out


def run_detect(cube: pathlib.Path, method: str, out: pathlib.Path,
               budget: str | None, timeout: float) -> dict:
  """One detect subprocess: seconds (reported and wall), peak RSS, exit status.

  Peak RSS is the child's VmHWM (see ``_CHILD``), in GiB.
  """
  name, _, variant = method.partition("+")
  cmd = [sys.executable, "-c", _CHILD, "detect", str(cube), "--method", name,
         "--out", str(out)] + (["--memory-budget", budget] if budget else []) + (
             [f"--{variant}"] if variant else [])
  hwm = pathlib.Path(f"{out}.hwm")
  if hwm.exists():
    hwm.unlink()
  env = dict(os.environ, PYTHONPATH=str(REPO), LRRJAX_HWM_FILE=str(hwm))
  log_out, log_err = pathlib.Path(f"{out}.stdout"), pathlib.Path(f"{out}.stderr")
  t0 = time.perf_counter()
  with open(log_out, "w", encoding="utf-8") as fo, open(log_err, "w", encoding="utf-8") as fe:
    proc = subprocess.Popen(cmd, env=env, stdout=fo, stderr=fe)  # pylint: disable=consider-using-with
    deadline = t0 + timeout
    try:
      proc.wait(timeout=max(deadline - time.perf_counter(), 1))
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait()
  wall = time.perf_counter() - t0
  stdout = log_out.read_text(errors="replace")
  stderr = log_err.read_text(errors="replace").strip()
  peak = int(hwm.read_text()) / 2 ** 20 if hwm.exists() else float("nan")
  rec = {"command": "lrrjax " + " ".join(cmd[3:]), "returncode": proc.returncode,
         "wall_s": wall, "peak_rss_gib": peak,
         "stderr_tail": stderr.splitlines()[-1][-300:] if stderr else ""}
  m = re.search(r" in ([0-9.]+)s -> ", stdout)
  if proc.returncode == 0 and m:
    rec["seconds"] = float(m.group(1))
  return rec


def _figure(records, path) -> None:
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  fig = Figure(figsize=(9, 3.8), layout="constrained")
  ax1, ax2 = fig.subplots(1, 2)
  for method in dict.fromkeys(r["method"] for r in records):
    rows = [r for r in records if r["method"] == method and "seconds" in r]
    if not rows:
      continue
    px = [r["pixels"] for r in rows]
    ax1.loglog(px, [r["seconds"] for r in rows], "o-", label=method)
    ax2.loglog(px, [r["pixels_per_second"] for r in rows], "o-", label=method)
  ax1.set_xlabel("pixels (H x W)")
  ax1.set_ylabel("seconds")
  ax2.set_xlabel("pixels (H x W)")
  ax2.set_ylabel("pixels per second")
  ax1.legend()
  ax1.grid(True, which="both", alpha=0.3)
  ax2.grid(True, which="both", alpha=0.3)
  fig.savefig(path, dpi=120)


def _markdown(records, gflops, rate=None) -> str:
  lines = ["| size (H x W x B) | method | seconds | pixels/s | peak RSS (GiB) | wall (s) | path |",
           "|---|---|---:|---:|---:|---:|---|"]
  for r in records:
    if "seconds" in r:
      lines.append(f"| {r['shape']} | {r['method']} | {r['seconds']:.2f} | "
                   f"{r['pixels_per_second']:.3g} | {r['peak_rss_gib']:.2f} | "
                   f"{r['wall_s']:.1f} | {r.get('path', '')} |")
    else:
      lines.append(f"| {r['shape']} | {r['method']} | — | — | {r['peak_rss_gib']:.2f} | "
                   f"{r['wall_s']:.1f} | exit {r['returncode']}: {r['stderr_tail']} |")
  lines += ["", f"float32 matmul rate of this machine: {gflops:.1f} GFLOP/s "
            "(2048 x 2048, best of 5)."]
  if rate:
    lines += ["", f"LRR-Net+ (shipped) on a strip of {rate['strip']}: "
              f"{rate['matmul_flops_per_pixel'] / 1e6:.2f} MFLOP of matmuls per pixel "
              f"({rate['stages']} stages, K = {rate['atoms']}); the stages run at "
              f"{rate['stages_gflops']:.1f} GFLOP/s ({rate['ratio_stages']:.2f}x below the "
              f"matmul rate measured around them, "
              f"{max(rate['matmul_gflops_around']):.1f} GFLOP/s), stages + features at "
              f"{rate['strip_gflops']:.1f} GFLOP/s ({rate['ratio_strip']:.2f}x)."]
  return "\n".join(lines) + "\n"


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--out", required=True)
  p.add_argument("--data", default="/tmp/lrrjax_scaling",
                 help="folder of the generated cubes (outside the repository)")
  p.add_argument("--sizes", default="100,256,512,1024,2048")
  p.add_argument("--bands", type=int, default=200)
  p.add_argument("--methods", default="grx,lrrnet-plus")
  p.add_argument("--max-size", action="append", default=[], metavar="METHOD=SIZE",
                 help="largest size to run a method at (slow methods)")
  p.add_argument("--memory-budget", default=None)
  p.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
  p.add_argument("--flop-rate", action="store_true",
                 help="also time the shipped LRR-Net+ in process (FLOP rate vs matmul)")
  args = p.parse_args(argv)
  sys.path.insert(0, str(REPO))
  from lrrjax import provenance  # pylint: disable=import-outside-toplevel
  out = pathlib.Path(args.out)
  runs = out / "runs"
  runs.mkdir(parents=True, exist_ok=True)
  data = pathlib.Path(args.data)
  data.mkdir(parents=True, exist_ok=True)
  if REPO in data.resolve().parents:
    raise SystemExit("--data must lie outside the repository")
  limits = {k: int(v) for k, v in (m.split("=") for m in args.max_size)}
  sizes = [int(s) for s in args.sizes.split(",")]
  methods = [m for m in args.methods.split(",") if m]
  gflops = matmul_gflops()
  # Records of earlier runs into the same --out are kept, except those redone now.
  old = out / "scaling.json"
  todo = {(z, m) for z in sizes for m in methods}
  old_json = json.loads(old.read_text()) if old.exists() else {}
  records = [r for r in old_json.get("records", []) if (r["size"], r["method"]) not in todo]
  old_rate = old_json.get("lrrnet_flop_rate")
  for size in sizes:
    cube = data / f"cube_{size}_{args.bands}.npy"
    if not cube.exists():
      t0 = time.perf_counter()
      write_cube(cube, size, args.bands)
      print(f"wrote {cube} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    for method in methods:
      if size > limits.get(method, 1 << 30):
        continue
      rec = run_detect(cube, method, runs / f"{size}-{method}", args.memory_budget,
                           args.timeout)
      rec.update(method=method, size=size, bands=args.bands, pixels=size * size,
                 shape=f"{size} x {size} x {args.bands}",
                 cube_gib=size * size * args.bands * 4 / 2 ** 30)
      if "seconds" in rec:
        rec["pixels_per_second"] = size * size / rec["seconds"]
        det = runs / f"{size}-{method}" / "detect.json"
        if det.exists():
          tiled = json.loads(det.read_text()).get("tiled")
          rec["path"] = (f"tiled, {tiled['tiles']} strips of {tiled['tile_rows']} rows"
                         if tiled else "whole scene")
      records.append(rec)
      print(json.dumps({k: v for k, v in rec.items() if k != "stderr_tail"}),
            file=sys.stderr, flush=True)
      provenance.write_json(out / "scaling.json",
                            {"records": records, "matmul_gflops_f32": gflops,
                             "lrrnet_flop_rate": old_rate, "provenance": provenance.record()})
  records.sort(key=lambda r: (r["method"], r["size"]))
  rate = None
  if args.flop_rate:
    big = max((z for z in sizes if z <= 1024), default=sizes[0])
    rate = lrrnet_flop_rate(data / f"cube_{big}_{args.bands}.npy")
  else:
    rate = old_rate
  provenance.write_json(out / "scaling.json",
                        {"records": records, "matmul_gflops_f32": gflops,
                         "lrrnet_flop_rate": rate, "provenance": provenance.record()})
  (out / "scaling.md").write_text(_markdown(records, gflops, rate), encoding="utf-8")
  _figure(records, out / "scaling.png")
  return 0


if __name__ == "__main__":
  sys.exit(main())
