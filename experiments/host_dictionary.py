"""A candidate for the cold start of ``lrrjax detect``: the dictionary
selection on the host (numpy) instead of inside the compiled ``scene_context``.

The selection (k-means on a pixel sample, then each cluster's most typical
members; :func:`lrrjax.lrr.scene.dictionary_atoms`) runs in milliseconds but
is three quarters of ``scene_context``'s XLA compilation (about 1.1 s of 1.5 s,
``results/compile_parts.json``). This is the same scheme in numpy, with one
change that a traced twin (for the exported detector) could follow exactly:
every k-means++ draw is made by inverse-CDF sampling from a counter-based
integer hash of ``(seed, counter)`` instead of ``jax.random``. Written down,
with the rule that would adopt it, before its code or any run (BUILD_NOTES,
"Issue #8's targets re-measured", *Next candidate*)::

  python experiments/head_features.py hostdict --out results/ablation_general/v6_hostdict

runs the leave-one-scene-out of ``experiments/generalization.py`` with this
selection patched into :func:`lrrjax.lrr.scene.context_of` (the path of the
feature pool and of the held-out scenes' features), and records the host
selection's seconds per scene beside the jitted one's. Nothing in the package
changes.

Adopted after that run: the package's :mod:`lrrjax.lrr.atoms` is this
selection and its traced twin, so the command above now runs the package's own
path with nothing patched (the run at ``f258cf2`` patched this file's own copy,
the same code, into ``context_of``); the jitted selection it was timed against
(``jax.random`` k-means++) is gone, so ``selection.json`` now times the host
form against its jitted traced twin.
"""

from __future__ import annotations

import pathlib
import sys
import time

import numpy as np

from lrrjax.lrr.atoms import dictionary_atoms, dictionary_atoms_traced


def _scenes(data_dir):
  """(name, normalised pixels (B, N) float32) of every scene in ``data_dir``."""
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  for path in io.list_scenes(data_dir):
    s = io.load_scene(path)
    h, w, b = s.cube.shape
    yield s.name, np.asarray(io.normalize(s.cube, "global"), np.float32).reshape(h * w, b).T


def _twin_jit():
  import functools  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  return jax.jit(functools.partial(dictionary_atoms_traced, seed=0))


def _write(out, name, rows):
  from lrrjax import provenance  # pylint: disable=import-outside-toplevel
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  provenance.write_json(out / name, {"scenes": rows, "provenance": provenance.record()})


def twin_check(data_dir, out) -> dict:
  """Per scene: the host atoms against the traced twin's (jitted) and against
  the host atoms of the cube with 7 zero bands appended (zero-band padding must
  not change the dictionary); written to ``OUT/twin.json``."""
  twin = _twin_jit()
  rows = {}
  for name, x_bn in _scenes(data_dir):
    host = dictionary_atoms(x_bn, 0)
    traced = np.asarray(twin(x_bn))
    padded = dictionary_atoms(np.concatenate([x_bn, np.zeros((7, x_bn.shape[1]), np.float32)]), 0)
    rows[name] = {"twin_equal": bool(np.array_equal(host, traced)),
                  "twin_shared_atoms": len(set(host.tolist()) & set(traced.tolist())),
                  "padding_equal": bool(np.array_equal(host, padded))}
    print(name, rows[name], flush=True)
  _write(out, "twin.json", rows)
  return rows


def selection_seconds(data_dir, out) -> dict:
  """Host vs jitted selection seconds (median of 5 after one untimed call)
  and whether their atoms agree, per scene; written to ``OUT/selection.json``."""
  jitted = _twin_jit()
  rows = {}
  for scene_name, x_bn in _scenes(data_dir):
    row = {}
    for name, fn in (("host", lambda: dictionary_atoms(x_bn, 0)),
                     ("jit", lambda: np.asarray(jitted(x_bn)))):
      atoms = fn()
      ts = []
      for _ in range(5):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
      row[f"{name}_s"] = float(np.median(ts))
      row[f"{name}_atoms"] = atoms.tolist()
    row["same_atom_set"] = sorted(row["host_atoms"]) == sorted(row["jit_atoms"])
    rows[scene_name] = row
    print(f"{scene_name}: host {row['host_s'] * 1e3:.1f} ms, jit {row['jit_s'] * 1e3:.1f} ms, "
          f"same atoms {row['same_atom_set']}", flush=True)
  _write(out, "selection.json", rows)
  return rows


if __name__ == "__main__":
  if len(sys.argv) == 4 and sys.argv[1] == "twin" and sys.argv[2] == "--out":
    from lrrjax import io as _io  # pylint: disable=import-outside-toplevel
    twin_check(_io.data_dir(), sys.argv[3])
    sys.exit(0)
  sys.exit("usage: python experiments/host_dictionary.py twin --out DIR "
           "(the LOSO run: python experiments/head_features.py hostdict --out DIR)")
