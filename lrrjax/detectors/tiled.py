"""Tiled (streaming) forms of the classical detectors.

See :class:`lrrjax.detectors.TiledForm` for the interface. Each form here
wraps the whole-scene function's mathematics without changing it:

* ``grx``: the global mean and covariance come from the streamed statistics;
  the score of a pixel is its squared Mahalanobis distance with the
  pseudo-inverse of the band-standardised covariance, exactly the quantity
  :func:`lrrjax.detectors.rx.global_rx` computes through an SVD of the whole
  data. With ``D = diag(sqrt(C_bb))``, ``R = D^-1 C D^-1 = V diag(e) V^T``::

    d_i = z_i^T D^-1 V_k diag(1 / e_k) V_k^T D^-1 z_i,  z_i = x_i - mu,

  keeping ``e_k > e_max (B eps32)^2`` (the SVD route keeps singular values
  ``s_k > s_max B eps32`` and ``e_k = s_k^2 / N``). float64 throughout.
* ``crd``: the dual-window function applied to a strip with a halo of
  ``outer // 2`` rows, so every core pixel sees the same window as in the
  whole scene (scene borders are real borders in both cases). CRD's global
  ``[0, 1]`` rescaling uses the streamed global min/max.
* ``lrx``: the global principal components from the streamed mean and
  covariance (:func:`lrrjax.detectors._pca.basis`, the same eigen-decomposition
  the whole-scene path does on the loaded cube), each strip projected on them,
  then the dual-window local RX of the projected strip with the halo of ``crd``.
* ``aed``: the strips only project the pixels on the p global components (from
  the streamed covariance) into a memory-mapped (p, H, W) file; the finish
  runs the attribute filters and the domain-transform filter on those 2-D maps
  whole (:func:`lrrjax.detectors.aed.aed_from_components`), so the result is the
  whole-scene AED's: its min-max normalisations are global and its recursive
  filter has unbounded support, which a halo would only approximate. Memory of
  the finish: ~60 bytes a pixel (the p = 3 maps in float64 and the filter's
  temporaries) against 4 B bytes a pixel for the cube.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lrrjax.detectors import _pca, _window, aed, crd, rx

_EPS32 = float(np.finfo(np.float32).eps)
_BLOCK = 1 << 16


def _streamed_cov(stats, method: str) -> np.ndarray:
  """The streamed covariance; ValueError when the form did not ask for it."""
  if stats.cov is None:
    raise ValueError(f"{method} needs the streamed covariance (needs_covariance=True)")
  return stats.cov


class GrxState(NamedTuple):
  """``d(x) = ||(x - mean) @ proj_bk||^2``."""
  mean: np.ndarray     # (B,) float64
  proj_bk: np.ndarray  # (B, K) float64: D^-1 V_k diag(e_k^-1/2)


def grx_fit(stats) -> GrxState:
  """Whitening projection of the streamed covariance (see module docstring)."""
  cov = _streamed_cov(stats, "grx")
  b = stats.bands
  std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
  safe = np.where(std > 0, std, 1.0)
  corr = cov / np.outer(safe, safe)
  evals, evecs = np.linalg.eigh(corr)
  keep = evals > max(float(evals.max()), 0.0) * (b * _EPS32) ** 2
  proj = (evecs[:, keep] / np.sqrt(evals[keep])) / safe[:, None]
  return GrxState(np.asarray(stats.mean, np.float64), proj)


def grx_score(state: GrxState, tile_hwb: np.ndarray) -> np.ndarray:
  """Squared Mahalanobis distance of every pixel of the strip (float32 ``(h, w)``)."""
  h, w, b = tile_hwb.shape
  x = tile_hwb.reshape(-1, b)
  out = np.empty(x.shape[0], np.float32)
  for c0 in range(0, x.shape[0], _BLOCK):
    z = x[c0:c0 + _BLOCK].astype(np.float64) - state.mean
    p = z @ state.proj_bk
    out[c0:c0 + _BLOCK] = np.einsum("ij,ij->i", p, p)
  return out.reshape(h, w)


class WindowState(NamedTuple):
  """Parameters of a dual-window method plus CRD's global rescaling."""
  params: dict
  lo: float
  hi: float


def window_fit(stats, **params) -> WindowState:
  return WindowState(dict(params), float(stats.band_min.min()),
                     float(stats.band_max.max()))


def window_halo(state) -> int:
  """Rows of context of a dual-window method: ``outer // 2`` (``state.params``)."""
  return int(state.params["outer"]) // 2


def crd_score(state: WindowState, tile_hwb: np.ndarray) -> np.ndarray:
  params = dict(state.params)
  if params.pop("normalize", True):
    # crd._crd's rescaling, float32, with the whole cube's extremes.
    lo, hi = np.float32(state.lo), np.float32(state.hi)
    span = hi - lo if hi > lo else np.float32(1.0)
    tile_hwb = (np.asarray(tile_hwb, np.float32) - lo) / span
  return crd.crd(tile_hwb, normalize=False, **params)


class LrxState(NamedTuple):
  """Local RX's window parameters and the global component basis (None: all bands)."""
  params: dict
  basis: _pca.Basis | None


def lrx_fit(stats, inner: int, outer: int, ridge: float, n_components: int | None) -> LrxState:
  """Checks the window against the whole scene; components from the streamed
  covariance (``needs_covariance=True``)."""
  _window.check_window(inner, outer, (stats.height, stats.width, stats.bands))
  b = None
  if n_components is not None:
    b = _pca.basis(stats.mean, _streamed_cov(stats, "lrx"), n_components, whiten=True)
  return LrxState({"inner": inner, "outer": outer, "ridge": ridge}, b)


def lrx_score(state: LrxState, tile_hwb: np.ndarray) -> np.ndarray:
  t = tile_hwb if state.basis is None else _pca.project(tile_hwb, state.basis)
  return rx.local_rx(t, n_components=None, **state.params)


class AedState(NamedTuple):
  """AED's parameters and the (unwhitened) global component basis."""
  params: dict
  basis: _pca.Basis


def aed_fit(stats, n_components: int, area: int, sigma_s: float, sigma_r: float,
            iterations: int) -> AedState:
  aed.check_params(stats.height, stats.width, stats.bands, n_components, area, sigma_s,
                   sigma_r, iterations)
  return AedState({"area": area, "sigma_s": sigma_s, "sigma_r": sigma_r,
                   "iterations": iterations},
                  _pca.basis(stats.mean, _streamed_cov(stats, "aed"), n_components,
                             whiten=False))


def aed_score(state: AedState, tile_hwb: np.ndarray) -> np.ndarray:
  """The strip's principal components, (p, h, W) float32 (the finish's input)."""
  return _pca.project(tile_hwb, state.basis).transpose(2, 0, 1)


def aed_finish(state: AedState, raw_phw, tile_rows: int) -> np.ndarray:  # pylint: disable=unused-argument
  """AED of the gathered components (scores (H, W) float32)."""
  return aed.aed_from_components(np.asarray(raw_phw).transpose(1, 2, 0), **state.params)
