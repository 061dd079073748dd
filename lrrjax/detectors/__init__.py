"""Anomaly detectors and the method registry.

The registry is the only place that lists method names.  Classical detectors
(grx, lrx, crd, lrasr, aed) are registered here; the LRR core (lrr-admm, lrrnet,
lrrnet-plus) and auto-ad register themselves with :func:`register` when their
modules (``lrrjax.lrr.methods``, ``lrrjax.autoad``) are imported, which
:func:`available_methods`, :func:`get_method` and the ``METHODS`` attribute do
lazily (a module that does not exist yet is skipped).

Every method is ``fn(scene, **params) -> scores (H, W)``, larger = more
anomalous; :func:`run_method` returns them as float32 numpy.

Tiled (streaming) form
----------------------
A method may also carry ``MethodSpec.tiled``, a :class:`TiledForm`, so that a
scene larger than memory is scored strip by strip (``lrrjax detect`` with a
cube over the memory budget, or ``--tile-rows``; runner:
:func:`lrrjax.streaming.detect_tiled`). Methods without one are loaded whole.

* ``fit(stats, **params) -> state``. ``stats`` is a
  :class:`lrrjax.io.stream.CubeStats` of the *raw* cube values (not
  normalised), streamed exactly in one pass: ``height, width, bands,
  n_pixels``, per-band ``band_min``/``band_max``, ``mean`` and ``cov``
  (float64, divided by N; None unless ``needs_covariance``), a deterministic
  random pixel sample ``sample_pb`` (P x B float32, P = 20000 by default,
  ``sample_index`` its sorted row-major indices) and a strided ``preview_hwb``.
  ``params`` are the method's parameters with the whole-scene function's
  defaults filled in (:func:`resolve_params`), so both paths share defaults.
  A method that normalises globally does it with the streamed extremes
  (:func:`lrrjax.io.stream.normalize_tile` equals ``io.normalize`` on the
  whole cube).
* ``score(state, tile_hwb_raw) -> tile_hw``: scores of one strip of raw
  float32 values, all columns, ``h`` rows (plus the halo rows, see below).
  It must not depend on the strip's other contents beyond the window of
  each pixel: scores of a pixel are the same whichever strip holds it.
* ``halo``: an int, or ``halo(state) -> int``: rows of context a spatial
  method needs on each side. The runner passes the strip with up to
  ``halo`` extra rows above and below (fewer at the scene's top and bottom,
  which are real borders) and keeps the scores of the core rows.
* ``needs_covariance``: whether ``fit`` reads ``stats.cov`` (an ``O(N B^2)``
  streaming cost).
* ``noise_rows``: 0, or ``noise_rows(H, W) -> int``: rows whose horizontal
  neighbour differences the statistics keep (``stats.hdiff_db``, band noise).
* ``finish``: None, or a second stage for scores that need scene-wide
  statistics of per-pixel quantities. ``score`` then returns ``(C, h, W)``
  raw maps instead of scores; the runner stores them for the whole scene in a
  memory-mapped ``(C, H, W)`` file and calls ``finish(state, raw_chw,
  tile_rows) -> scores (H, W)``, which reads it strip by strip.
* ``whole_factor`` / ``strip_overhead``: working memory of the whole-scene
  path in float32 copies of the cube, and of a strip in copies of the strip;
  :func:`lrrjax.streaming.plan` sizes strips and decides whole vs tiled with
  them.

A scene that fits in one strip is scored by ``fn`` itself (the whole-scene
path), so the tiled form only ever sees scenes of two strips or more.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable, NamedTuple

import numpy as np

from lrrjax.errors import ConfigError
from lrrjax.io import stream

_LAZY_MODULES = ("lrrjax.lrr.methods", "lrrjax.autoad", "lrrjax.gthad")


class TiledForm(NamedTuple):
  """Streaming form of a method (see the module docstring)."""
  fit: Callable[..., Any]
  score: Callable[[Any, np.ndarray], np.ndarray]
  halo: int | Callable[[Any], int] = 0
  needs_covariance: bool = True
  noise_rows: int | Callable[[int, int], int] = 0
  finish: Callable[[Any, Any, int], np.ndarray] | None = None
  whole_factor: int = stream.WHOLE_FACTOR
  strip_overhead: int = stream.STRIP_OVERHEAD


class MethodSpec(NamedTuple):
  """A registered detector: ``fn(scene, **params) -> scores_hw``; ``tiled`` optional."""
  name: str
  fn: Callable[..., Any]
  description: str
  tiled: TiledForm | None = None


_METHODS: dict[str, MethodSpec] = {}
_loaded = False


def register(spec: MethodSpec) -> MethodSpec:
  """Adds ``spec`` to the registry and returns it.

  Re-registering a name with the same function (same module and qualified
  name, e.g. after a module reload) replaces it; a different function under an
  existing name is a ConfigError.
  """
  if not isinstance(spec, MethodSpec):
    raise ConfigError(f"register expects a MethodSpec, got {type(spec).__name__}")
  old = _METHODS.get(spec.name)
  if old is not None and _fn_id(old.fn) != _fn_id(spec.fn):
    raise ConfigError(f"method {spec.name!r} is already registered by {_fn_id(old.fn)}")
  _METHODS[spec.name] = spec
  return spec


def _fn_id(fn) -> str:
  return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _load_all() -> None:
  """Imports the modules that register the non-classical methods (once)."""
  global _loaded
  if _loaded:
    return
  _loaded = True
  for mod in _LAZY_MODULES:
    try:
      importlib.import_module(mod)
    except ModuleNotFoundError as e:
      # Only tolerate the registering module itself (or its package) missing,
      # not a missing dependency inside it.
      parents = {mod[:i] for i in range(len(mod)) if mod[i] == "."} | {mod}
      if e.name not in parents:
        raise


def available_methods() -> dict[str, MethodSpec]:
  """All registered methods, name -> MethodSpec (loads lazy modules)."""
  _load_all()
  return dict(_METHODS)


def get_method(name: str) -> MethodSpec:
  """The MethodSpec of ``name``; ConfigError listing the known names if unknown."""
  _load_all()
  try:
    return _METHODS[name]
  except (KeyError, TypeError):
    raise ConfigError(
        f"unknown method {name!r}; known methods: {', '.join(sorted(_METHODS))}") from None


def resolve_params(spec: MethodSpec, overrides: dict[str, Any]) -> dict[str, Any]:
  """``overrides`` completed with the defaults of ``spec.fn``'s keyword parameters.

  Raises:
    ConfigError: a parameter ``spec.fn`` does not take.
  """
  params = list(inspect.signature(spec.fn).parameters.values())[1:]
  known = {p.name: p for p in params
           if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
  if not any(p.kind == p.VAR_KEYWORD for p in params):
    bad = sorted(set(overrides) - set(known))
    if bad:
      raise ConfigError(f"method {spec.name!r} has no parameter(s) {', '.join(bad)}; "
                        f"accepted: {', '.join(sorted(known)) or '(none)'}")
  out = {k: p.default for k, p in known.items() if p.default is not p.empty}
  out.update(overrides)
  return out


def run_method(name: str, scene, **overrides) -> np.ndarray:
  """Runs method ``name`` on ``scene`` with parameter overrides.

  Args:
    name: registered method name.
    scene: a :class:`lrrjax.io.Scene` (anything with a ``cube`` (H, W, B)).
    **overrides: keyword parameters of the method.

  Returns:
    (H, W) float32 scores.

  Raises:
    ConfigError: unknown method or parameter.
  """
  spec = get_method(name)
  sig = inspect.signature(spec.fn)
  params = list(sig.parameters.values())[1:]
  if not any(p.kind == p.VAR_KEYWORD for p in params):
    known = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    bad = sorted(set(overrides) - known)
    if bad:
      raise ConfigError(f"method {name!r} has no parameter(s) {', '.join(bad)}; "
                        f"accepted: {', '.join(sorted(known)) or '(none)'}")
  scores = np.asarray(spec.fn(scene, **overrides), dtype=np.float32)
  cube = np.shape(scene.cube)
  if scores.shape != tuple(cube[:2]):
    raise ConfigError(f"method {name!r} returned scores of shape {scores.shape}, "
                      f"expected {tuple(cube[:2])}")
  return scores


def __getattr__(attr):
  if attr == "METHODS":
    _load_all()
    return _METHODS
  raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


# --- classical detectors ---------------------------------------------------

from lrrjax.detectors import aed, crd, lrasr, rx, tiled  # noqa: E402  (after the registry API)


def _grx(scene):
  return rx.global_rx(scene.cube)


def _scene_errors(scene, fn, **kw):
  """Calls ``fn(scene.cube, **kw)``; a ConfigError is re-raised naming the scene."""
  try:
    return fn(scene.cube, **kw)
  except ConfigError as e:
    name = getattr(scene, "name", None)
    if name is None:
      raise
    raise ConfigError(f"scene {name!r} (shape {tuple(np.shape(scene.cube))}): {e}") from None


def _lrx(scene, inner: int = rx.DEFAULT_INNER, outer: int = rx.DEFAULT_OUTER,
         ridge: float = rx.DEFAULT_RIDGE, n_components: int | None = rx.DEFAULT_N_COMPONENTS):
  return _scene_errors(scene, rx.local_rx, inner=inner, outer=outer, ridge=ridge,
                       n_components=n_components)


def _crd(scene, inner: int = crd.DEFAULT_INNER, outer: int = crd.DEFAULT_OUTER,
         lam: float = crd.DEFAULT_LAM, normalize: bool = True):
  return _scene_errors(scene, crd.crd, inner=inner, outer=outer, lam=lam, normalize=normalize)


def _aed(scene, n_components: int = aed.DEFAULT_N_COMPONENTS, area: int = aed.DEFAULT_AREA,
         sigma_s: float = aed.DEFAULT_SIGMA_S, sigma_r: float = aed.DEFAULT_SIGMA_R,
         iterations: int = aed.DEFAULT_ITERATIONS):
  return _scene_errors(scene, aed.aed, n_components=n_components, area=area, sigma_s=sigma_s,
                       sigma_r=sigma_r, iterations=iterations)


def _lrasr(scene, lam: float = 0.1, beta: float = 0.1, n_clusters: int = 15,
           per_cluster: int = 20, tol: float = 1e-5, max_iter: int = 500, seed: int = 0):
  return lrasr.lrasr(scene.cube, lam=lam, beta=beta, n_clusters=n_clusters,
                     per_cluster=per_cluster, tol=tol, max_iter=max_iter, seed=seed)


register(MethodSpec("grx", _grx, "Global RX: squared Mahalanobis distance to the scene mean",
                    TiledForm(tiled.grx_fit, tiled.grx_score)))
register(MethodSpec("lrx", _lrx, "Local RX on 20 whitened principal components, dual window (9, 19)",
                    TiledForm(tiled.lrx_fit, tiled.lrx_score, tiled.window_halo)))
register(MethodSpec("crd", _crd, "Collaborative representation detector (Li & Du 2015), dual window (11, 13)",
                    TiledForm(tiled.window_fit, tiled.crd_score, tiled.window_halo, False)))
register(MethodSpec("aed", _aed, "Attribute and edge-preserving filters (Kang et al. 2017): area "
                    "opening/closing of 3 PCs, domain-transform filtering",
                    TiledForm(tiled.aed_fit, tiled.aed_score, finish=tiled.aed_finish)))
register(MethodSpec("lrasr", _lrasr, "Low-rank and sparse representation (Xu et al. 2016), LADMAP"))
