"""Two looks at the head's features of the cross-scene LRR-Net+ (issue #8).

``aucs``: the AUC(D,F) of every single feature of the shipped network's head
on each shared scene (a diagnostic: it shows which evidence separates the real
targets; ground truth only scores, and nothing here feeds back into a default)::

  python experiments/head_features.py aucs --out results/ablation_general/feature_aucs --with-recon

``recon``: leave-one-scene-out with three more features, white top-hats *by
reconstruction* of the residual map ``log(||e_i|| / m)``: erosion by a
(2r+1)^2 square, then ``iters`` geodesic dilations by 3 x 3 under the map
(``min(dilate(m), f)``), so a bright structure that contains the square comes
back whole and leaves no edges in the top-hat (the plain top-hat keeps the
rims of large roofs), while one that does not stays in the top-hat. Bounded
``iters`` keeps it a local operator (radius ``r + iters``), so strips would
still join::

  python experiments/head_features.py recon --out results/ablation_general/recon_tophats \\
      --radii 2,5,8 --iters 32

``area``: leave-one-scene-out with three more features, white *area* top-hats
of the same map, ``f - area_opening(f, a)`` (scikit-image max-tree, 4-connected,
through ``jax.pure_callback``; phase 1 only, no gradient): every bright
connected structure, at every grey level, with fewer than ``a`` pixels stays,
whatever its shape; the areas are those of the three square top-hats' squares
(25, 121, 289), fixed before any AUC of them was seen::

  python experiments/head_features.py area --out results/ablation_general/area_tophats \
      --areas 25,121,289

``epf``: leave-one-scene-out with three more features, the area top-hats after
an edge-preserving filter (the second step of AED, Kang et al. 2017, as a
strip-local operator): the guided filter of He et al. (ECCV 2010) with the
clipped log residual map as its own guide, half-width ``r`` and ``eps`` (log
units squared), fixed before any AUC of them was seen (r = 2, eps = 0.1)::

  python experiments/head_features.py epf --out results/ablation_general/v3_epf --r 2 --eps 0.1

``warea``: leave-one-scene-out with three more features, the white area
top-hats of the log *noise-whitened* residual map ``log(||e_i omega|| / m_w)``
(the map behind feature 2, ``log e_w``) at the shipped areas and ladder
(``score_head.AREAS``, ``score_head.AREA_LEVELS``), by the package's own JAX
area openings; written down before any AUC of them was seen::

  python experiments/head_features.py warea --out results/ablation_general/v3_warea

``aedpc``: leave-one-scene-out with three more features in the manner of
AED's attribute step (Kang et al. 2017) on the network's input: the first
``k`` principal components of the band-weighted scene (eigenvectors of the
B x B covariance, whole scene), each standardised by its median and
1.4826 MAD, their white *and* black area top-hats (targets brighter or darker
than their surroundings in any component) at the shipped areas on a ladder
-8..8 MAD in steps of 1/8, summed over components and polarities, ``log1p``;
one feature per area; written down before any AUC of it was seen. Ran at
3776a6b; since parameter version 5 the package has these features
(``score_head.pc_features``), and this command only says so::

  python experiments/head_features.py aedpc --out results/ablation_general/v3_aedpc --k 3

``rx``: leave-one-scene-out with one more feature, the log global RX score of
the band-weighted input relative to its scene median (the package's own
:func:`lrrjax.detectors.rx.global_rx`), written down before any AUC of it was
seen::

  python experiments/head_features.py rx --out results/ablation_general/v5_rx

``cfar``: leave-one-scene-out with three more features, the principal-component
area top-hats of parameter version 5 with each component's top-hats divided by
the local clutter scale of that component (a CFAR normalisation): ``c_k(p)``, the
standard deviation of the standardised score ``z_k`` over the ring between the
(2 inner + 1)^2 and (2 outer + 1)^2 squares around ``p`` (pixels inside the
image), floored at 1 (the scene's own MAD unit), so the top-hats are discounted
where the clutter is rougher than the scene's typical variation and never
amplified: ``log(1 + sum_k [WTH_a(z_k) + WTH_a(-z_k)] / max(1, c_k))`` per area;
written down before any AUC of it was seen (inner 8, outer 16). Ran at 44c0443;
since parameter version 6 the package has these features
(``score_head.PC_CFAR``), and this command only says so::

  python experiments/head_features.py cfar --out results/ablation_general/v5_cfar --inner 8 --outer 16

``border``: leave-one-scene-out with the shipped features changed, not
added to: every area opening (the residual map's and the principal
components') counts a connected component that touches the scene's border
(its first or last row or column) as large, whatever its size, so it leaves
no top-hat. A structure cut by the border has an unknown true extent, and
structures cut by it looked small (34 % of abu-beach-2's top 1 % of
background pixels within 2 pixels of the border, ``false_alarms_v6.json``).
Written down before any run of it (BUILD_NOTES, parameter version 6: "Next
candidate"), with its rule: LOSO mean partial AUC (FAR <= 1e-2) +>= 0.02 over
version 6, mean AUC(D,F) at most 0.002 lower, every scene >= 0.92. Whole
scenes only (strips would need to know which of their edges are the scene's
border)::

  python experiments/head_features.py border --out results/ablation_general/v6_border

``hostdict``: leave-one-scene-out with the dictionary selection of
``experiments/host_dictionary.py`` (on the host, hash-drawn k-means++; its
module docstring), after timing it against the jitted selection on every
scene (``OUT/selection.json``); rule in BUILD_NOTES ("Issue #8's targets
re-measured", *Next candidate*)::

  python experiments/head_features.py hostdict --out results/ablation_general/v6_hostdict

All patch :mod:`lrrjax.lrr.general` (or :mod:`lrrjax.lrr.area`, :mod:`lrrjax.lrr.scene`)
in this process only; nothing in the package changes.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

from lrrjax import cli, io, metrics, provenance
from lrrjax.lrr import config as lrr_config
from lrrjax.lrr import cross, general, score_head

NAMES = ["log(1 + s/m)", "log e", "log e_w", "white ring 5/15", "top-hat 5", "top-hat 11",
         "top-hat 17", "area top-hat 25", "area top-hat 121", "area top-hat 289",
         "PC area top-hats 25", "PC area top-hats 121", "PC area top-hats 289",
         "CFAR PC area top-hats 25", "CFAR PC area top-hats 121", "CFAR PC area top-hats 289"]
# parameter version 6 (version 5 had no CFAR copies; version 1 also had plain rings 3/9, 5/15, 9/19; versions
# 1 and 2 had no area top-hats; the withdrawn version 4 had the guided ones too;
# versions 1-4 had no principal-component ones)


def recon_opening(f_hw, r: int, iters: int):
  """Opening by (bounded) reconstruction: erosion by a (2r+1)^2 square, then
  ``iters`` geodesic 3 x 3 dilations under ``f_hw``."""
  one = (1, 1)
  m = jax.lax.reduce_window(f_hw, jnp.inf, jax.lax.min, (2 * r + 1, 2 * r + 1), one, "SAME")

  def body(_, m):
    return jnp.minimum(jax.lax.reduce_window(m, -jnp.inf, jax.lax.max, (3, 3), one, "SAME"),
                       f_hw)
  return jax.lax.fori_loop(0, iters, body, m)


def _install(features_from_raw, n_extra: int) -> None:
  """Makes ``features_from_raw`` the head's feature map in this process (the
  network calls :func:`lrrjax.lrr.score_head.features`, which looks it up in
  ``score_head``; the strips call it through ``general``) with ``n_extra`` more
  features."""
  score_head.features_from_raw = features_from_raw
  general.features_from_raw = features_from_raw
  general.N_FEATURES = general.N_FEATURES + n_extra


def patch_recon(radii, iters) -> list[str]:
  """Appends the reconstruction top-hats to the head's features (this process)."""
  old = general.features_from_raw

  def features_from_raw(raw_fn, med_f, h, w):
    phi = old(raw_fn, med_f, h, w)
    lr_hw = jnp.log(jnp.maximum(raw_fn[1], 1e-6 * med_f[0]) / med_f[0]).reshape(h, w)
    rec = [(lr_hw - recon_opening(lr_hw, r, iters)).reshape(-1) for r in radii]
    return jnp.concatenate([phi, jnp.stack(rec)])

  _install(features_from_raw, len(radii))
  return [f"recon top-hat {2 * r + 1}" for r in radii]


def area_opening_host(f_hw: np.ndarray, area: int) -> np.ndarray:
  """``skimage.morphology.area_opening`` (4-connected) on the host, float32."""
  from skimage import morphology  # pylint: disable=import-outside-toplevel
  f = np.asarray(f_hw, dtype=np.float64)
  return morphology.area_opening(f, area_threshold=int(area), connectivity=1).astype(np.float32)


def patch_area(areas) -> list[str]:
  """Appends white area top-hats of ``log(||e_i|| / m)`` to the head's features
  (exact, by scikit-image; the ablation was run at parameter version 2, before
  the package had its own JAX area top-hats)."""
  if general.AREAS:
    raise SystemExit("the head has area top-hats since parameter version 3 (lrrjax.lrr.area); "
                     "this ablation ran at version 2 (git checkout 96eb381 to rerun it)")
  old = general.features_from_raw

  def features_from_raw(raw_fn, med_f, h, w):
    phi = old(raw_fn, med_f, h, w)
    lr_hw = jnp.log(jnp.maximum(raw_fn[1], 1e-6 * med_f[0]) / med_f[0]).reshape(h, w)
    lr_hw = jax.lax.stop_gradient(lr_hw)
    outs = []
    for a in areas:
      opened = jax.pure_callback(lambda f, a=a: area_opening_host(f, a),
                                 jax.ShapeDtypeStruct((h, w), lr_hw.dtype), lr_hw)
      outs.append((lr_hw - opened).reshape(-1))
    return jnp.concatenate([phi, jnp.stack(outs)])

  _install(features_from_raw, len(areas))
  return [f"area top-hat {a}" for a in areas]


def patch_epf(r: int, eps: float) -> list[str]:
  """Appends the guided-filtered area top-hats to the head's features (this
  process)."""
  if score_head.N_GUIDED:
    raise SystemExit("the head already has guided area top-hats (score_head.GUIDED_R)")
  old = general.features_from_raw
  n_a = len(general.AREAS)

  def features_from_raw(raw_fn, med_f, h, w):
    phi = old(raw_fn, med_f, h, w)
    lr_hw = jnp.log(jnp.maximum(raw_fn[1], 1e-6 * med_f[0]) / med_f[0]).reshape(h, w)
    guide = jnp.clip(lr_hw, min(score_head.AREA_LEVELS), max(score_head.AREA_LEVELS))
    a0 = 3 + len(general.RINGS) + len(general.WHITE_RINGS) + len(general.TOPHATS)
    tops = phi[a0:a0 + n_a].reshape(n_a, h, w)
    return jnp.concatenate([phi, score_head.guided_filter(guide, tops, r, eps).reshape(n_a, -1)])

  _install(features_from_raw, n_a)
  return [f"guided area top-hat {a}" for a in general.AREAS]


def patch_warea() -> list[str]:
  """Appends the area top-hats of the log whitened residual map to the head's
  features (this process)."""
  from lrrjax.lrr import area  # pylint: disable=import-outside-toplevel
  old = general.features_from_raw
  areas = tuple(score_head.AREAS)

  def features_from_raw(raw_fn, med_f, h, w):
    phi = old(raw_fn, med_f, h, w)
    lw_hw = jnp.log(jnp.maximum(raw_fn[2], 1e-6 * med_f[1]) / med_f[1]).reshape(h, w)
    tops = area.area_tophats(lw_hw, areas, score_head.AREA_LEVELS)
    return jnp.concatenate([phi, tops.reshape(len(areas), -1)])

  _install(features_from_raw, len(areas))
  return [f"whitened area top-hat {a}" for a in areas]


def patch_rx() -> list[str]:
  """Appends one feature, the log global RX score of the network's
  band-weighted input relative to its scene median,
  ``log(max(d_i, 1e-6 med d) / med d)`` with ``d_i`` the package's global RX
  (:func:`lrrjax.detectors.rx.global_rx`: squared Mahalanobis distance to the
  scene mean, pseudo-inverse of the covariance by a thin SVD of the
  band-standardised pixels), to the head's features (this process; whole
  scenes only: no strip form)."""
  from lrrjax.detectors import rx  # pylint: disable=import-outside-toplevel
  old = general.features

  def features(s_nb, e_nb, noise_b, h, w, x_nb=None, pcs=None):
    phi = old(s_nb, e_nb, noise_b, h, w, x_nb, pcs)
    d_n = jax.lax.stop_gradient(rx._global_rx_n(x_nb))  # pylint: disable=protected-access
    med = score_head.scene_median(d_n)
    return jnp.concatenate([phi, jnp.log(jnp.maximum(d_n, 1e-6 * med) / med)[None]])

  score_head.features = features
  general.features = features
  general.N_FEATURES = general.N_FEATURES + 1
  score_head.N_FEATURES = score_head.N_FEATURES + 1
  return ["log global RX"]


def patch_cfar(inner: int, outer: int) -> list[str]:
  """The ``cfar`` ablation ran at parameter version 5 (44c0443); since version 6
  the package computes exactly these features itself (``score_head.PC_CFAR``,
  :func:`lrrjax.lrr.score_head.pc_features`), so here it only says so."""
  del inner, outer
  raise SystemExit("the head has CFAR-normalised principal-component top-hats since parameter "
                   "version 6 (score_head.PC_CFAR); this ablation ran at version 5 "
                   "(git checkout 44c0443 to rerun it)")


def patch_aedpc(k: int) -> list[str]:
  """The ``aedpc`` ablation ran at parameter version 3 (3776a6b); since version 5
  the package computes exactly these features itself
  (:func:`lrrjax.lrr.score_head.pc_features`), so here it only says so."""
  del k
  raise SystemExit("the head has principal-component area top-hats since parameter version 5 "
                   "(lrrjax.lrr.score_head.pc_features); this ablation ran at version 3 "
                   "(git checkout 3776a6b to rerun it)")


def patch_border() -> list[str]:
  """Makes every area opening of the head count border-touching components
  as large (this process): no feature is added, the area top-hats change."""
  import functools  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import area  # pylint: disable=import-outside-toplevel
  area._openings_desc = functools.partial(area._openings_desc,  # pylint: disable=protected-access
                                          border_large=True)
  return []


def feature_aucs(data_dir, out, extra_names=()) -> dict:
  cfg = lrr_config.get_general_config()
  model = cross.model_from_config(cfg)
  rows = {}
  for p in io.list_scenes(data_dir):
    s = io.load_scene(p)
    phi = cross.scene_features(model, cfg, io.normalize(s.cube, "global"))
    rows[s.name] = [metrics.auc_df(phi[i], s.gt.reshape(-1)) for i in range(phi.shape[0])]
  names = NAMES + list(extra_names)
  lines = ["| scene | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
  lines += [f"| {k} | " + " | ".join(f"{v:.3f}" for v in vals) + " |" for k, vals in rows.items()]
  mean = np.mean(list(rows.values()), axis=0)
  lines.append("| mean | " + " | ".join(f"{v:.3f}" for v in mean) + " |")
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  obj = {"features": names, "auc_df": rows, "provenance": provenance.record()}
  (out / "feature_aucs.json").write_text(json.dumps(obj, indent=1), encoding="utf-8")
  (out / "feature_aucs.md").write_text(
      "AUC(D,F) of each head feature alone (untrained network, shared scenes; "
      "ground truth only scores)\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
  return obj


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("what", choices=["aucs", "recon", "area", "epf", "warea", "aedpc", "rx", "cfar",
                                    "border", "hostdict"])
  p.add_argument("--out", required=True)
  p.add_argument("--data", default=None, help="scene folder (default LRRJAX_DATA_DIR)")
  p.add_argument("--radii", default="2,5,8")
  p.add_argument("--iters", type=int, default=32)
  p.add_argument("--areas", default="25,121,289")
  p.add_argument("--r", type=int, default=2, help="epf: guided filter half-width")
  p.add_argument("--eps", type=float, default=0.1, help="epf: guided filter eps")
  p.add_argument("--k", type=int, default=3, help="aedpc: principal components (runs at 3776a6b only)")
  p.add_argument("--inner", type=int, default=8, help="cfar: guard half-width of the ring (runs at 44c0443 only)")
  p.add_argument("--outer", type=int, default=16, help="cfar: outer half-width of the ring (runs at 44c0443 only)")
  p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                 help="recon / area: config override passed to generalization.run")
  p.add_argument("--with-recon", action="store_true",
                 help="aucs: also the reconstruction top-hats (--radii, --iters)")
  p.add_argument("--with-area", action="store_true",
                 help="aucs: also the area top-hats (--areas)")
  a = p.parse_args(argv)
  data = a.data if a.data is not None else io.data_dir()
  radii = [int(v) for v in a.radii.split(",")]
  areas = [int(v) for v in a.areas.split(",")]
  if a.what == "aucs":
    extra = list(patch_recon(radii, a.iters)) if a.with_recon else []
    extra += patch_area(areas) if a.with_area else []
    feature_aucs(data, a.out, extra)
  else:
    if a.what == "recon":
      patch_recon(radii, a.iters)
    elif a.what == "epf":
      patch_epf(a.r, a.eps)
    elif a.what == "warea":
      patch_warea()
    elif a.what == "aedpc":
      patch_aedpc(a.k)
    elif a.what == "rx":
      patch_rx()
    elif a.what == "cfar":
      patch_cfar(a.inner, a.outer)
    elif a.what == "border":
      patch_border()
    elif a.what == "hostdict":
      sys.path.insert(0, str(pathlib.Path(__file__).parent))
      import host_dictionary  # pylint: disable=import-outside-toplevel
      host_dictionary.selection_seconds(data, a.out)  # the package selects on the host already
    else:
      patch_area(areas)
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    import generalization  # pylint: disable=import-outside-toplevel
    out = pathlib.Path(a.out)
    generalization.run(data, out, cli.parse_sets(a.set), pool_cache=out / "feature_pool.npz")
  return 0


if __name__ == "__main__":
  sys.exit(main())
