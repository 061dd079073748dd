"""Helpers shared by the `lrrjax` subcommands: --set parsing, config overrides,
scene loading with the band options, sizes, progress printers, error wording."""

import ast
import inspect
import os
import pathlib
import sys
from typing import Any, Sequence

from lrrjax.errors import ConfigError

DEFAULT_METHOD = "lrrnet-plus"
DEFAULT_BENCHMARK_METHODS = ("grx", "lrx", "crd", "aed", "lrasr", "lrr-admm", "lrrnet", "lrrnet-plus",
                             "auto-ad", "gt-had")
TRAINED_METHODS = ("lrrnet-plus",)


# ----------------------------------------------------------------------------
# helpers


COMPILE_CACHE_ENV = "LRRJAX_COMPILE_CACHE"
_OFF = ("off", "0", "no", "none", "false")


def compile_cache_dir() -> pathlib.Path | None:
  """Where the command line keeps JAX's persistent compilation cache, or None.

  ``$LRRJAX_COMPILE_CACHE`` (a folder, or ``off``); by default
  ``$XDG_CACHE_HOME/lrrjax/jax`` (``~/.cache/lrrjax/jax``). None as well when
  ``JAX_COMPILATION_CACHE_DIR`` is set: JAX then uses that one by itself.
  """
  if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    return None
  where = os.environ.get(COMPILE_CACHE_ENV, "").strip()
  if where.lower() in _OFF:
    return None
  if not where:
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "lrrjax" / "jax"
  return pathlib.Path(where)


def enable_compile_cache() -> pathlib.Path | None:
  """Turns on JAX's persistent compilation cache (:func:`compile_cache_dir`)
  for this process: a second ``lrrjax detect`` of a scene of the same shape
  and method loads the compiled programs instead of compiling them again
  (on a 100 x 100 scene most of the command's time). Every compilation is
  cached (no minimum compile time). A folder that cannot be created leaves
  the cache off; JAX itself only warns if an entry cannot be read or written.
  """
  where = compile_cache_dir()
  if where is None:
    return None
  try:
    where.mkdir(parents=True, exist_ok=True)
  except OSError:
    return None
  import jax  # pylint: disable=import-outside-toplevel
  jax.config.update("jax_compilation_cache_dir", str(where))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  return where


def parse_value(text: str) -> Any:
  """A --set value: a Python literal (int, float, bool, None, tuple...) or a string."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    low = text.lower()
    if low in ("true", "false"):
      return low == "true"
    if low in ("none", "null"):
      return None
    return text


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
  """`["a.b=1", "c=x"]` -> `{"a.b": 1, "c": "x"}`; ConfigError on a malformed item."""
  out = {}
  for item in items or ():
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key or not all(p.isidentifier() for p in key.split(".")):
      raise ConfigError(f"--set expects key=value (dotted keys allowed), got {item!r}")
    out[key] = parse_value(value.strip())
  return out


def apply_overrides(config, overrides: dict[str, Any]):
  """Sets dotted keys on an ml_collections ConfigDict; ConfigError on an unknown key
  or a value of the wrong type."""
  for key, value in overrides.items():
    parts = key.split(".")
    node = config
    for i, p in enumerate(parts[:-1]):
      if p not in node:
        raise ConfigError(f"unknown config key {'.'.join(parts[:i + 1])!r} in {key!r}")
      node = node[p]
    leaf = parts[-1]
    if not hasattr(node, "keys") or leaf not in node:
      raise ConfigError(f"unknown config key {key!r}")
    old = node[leaf]
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    try:
      node[leaf] = value
    except (TypeError, ValueError, KeyError) as e:
      raise ConfigError(f"bad value {value!r} for config key {key!r}: {e}") from e
  return config


def progress_enabled(args) -> bool:
  return bool(getattr(args, "progress", False)) or sys.stderr.isatty()


def progress_fn(args):
  """A stderr printer (any arguments) when progress is enabled, else None."""
  if not progress_enabled(args):
    return None

  def show(*parts, **named):
    if len(parts) == 2 and isinstance(parts[1], dict):  # (step, {name: value})
      parts = (f"step {parts[0]}:",
               *(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                 for k, v in parts[1].items()))
    text = " ".join(str(p) for p in parts)
    if named:
      text += (" " if text else "") + " ".join(f"{k}={v}" for k, v in named.items())
    print(text, file=sys.stderr, flush=True)

  return show


def notice(text: str) -> None:
  print(text, file=sys.stderr, flush=True)


def band_options(args) -> dict[str, Any]:
  """``bands``, ``bad_bands`` (file band indices or None) and
  ``drop_constant`` from the command-line band options."""
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  bands = getattr(args, "bands", None)
  bad = getattr(args, "bad_bands", None)
  return {"bands": None if bands is None else io.parse_band_list(bands, "--bands"),
          "bad_bands": None if bad is None else io.parse_band_list(bad, "--bad-bands"),
          "drop_constant": not getattr(args, "keep_constant_bands", False)}


def load(scene: str, key: str | None = None, gt_key: str | None = None, *,
         bands=None, bad_bands=None, drop_constant: bool = True):
  """The scene named on the command line: a file path or `synthetic`
  (lrrjax.synthetic.make_scene() with its defaults).

  ``bands``/``bad_bands`` select file bands; constant bands are dropped with a
  one-line notice on stderr naming them (``drop_constant``), else refused."""
  if scene == "synthetic":
    from lrrjax import synthetic  # pylint: disable=import-outside-toplevel
    if key is not None or gt_key is not None:
      raise ConfigError("--key/--gt-key do not apply to the synthetic scene")
    if bands is not None or bad_bands:
      raise ConfigError("--bands/--bad-bands do not apply to the synthetic scene")
    return synthetic.make_scene()
  from lrrjax import io  # pylint: disable=import-outside-toplevel
  path = pathlib.Path(scene)
  if not path.exists():
    raise FileNotFoundError(f"scene file not found: {scene}")
  loaded = io.load_scene(path, key=key, gt_key=gt_key, bands=bands,
                         bad_bands=bad_bands, drop_constant_bands=drop_constant)
  dropped = loaded.metadata.get("dropped_bands")
  if dropped:
    notice(f"note: {loaded.name}: dropped {len(dropped)} constant band(s) "
            f"{list(dropped)} (zero variance)")
  return loaded


def parse_size(text: str | int | None) -> int | None:
  """``"2048"`` (MiB), ``"512M"``, ``"2G"``, ``"1.5G"`` -> bytes; None stays None."""
  if text is None or isinstance(text, int):
    return None if text is None else int(text) * (1 << 20)
  t = str(text).strip().upper().removesuffix("B").removesuffix("I")
  mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
  unit = mult.get(t[-1:], None)
  try:
    value = float(t[:-1] if unit else t)
  except ValueError:
    raise ConfigError(f"--memory-budget: cannot read {text!r}; use e.g. 2048 "
                      f"(MiB), 512M or 2G") from None
  if not value > 0:
    raise ConfigError(f"--memory-budget must be positive, got {text!r}")
  return int(value * (unit or (1 << 20)))


def check_params(spec, params: dict[str, Any]) -> None:
  """ConfigError when a method's function cannot take one of `params`."""
  try:
    sig = inspect.signature(spec.fn)
  except (TypeError, ValueError):
    return
  if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()):
    return
  names = [n for n, p in sig.parameters.items()
           if p.kind in (inspect.Parameter.KEYWORD_ONLY,
                         inspect.Parameter.POSITIONAL_OR_KEYWORD)][1:]
  bad = [k for k in params if k not in names]
  if bad:
    raise ConfigError(f"method {spec.name!r} has no parameter(s) {', '.join(bad)}; "
                      f"it takes: {', '.join(names) or '(none)'}")


def method_spec(name: str):
  from lrrjax import detectors  # pylint: disable=import-outside-toplevel
  known = list(detectors.available_methods())
  if name not in known:
    raise ConfigError(f"unknown method {name!r}; available: {', '.join(known)}")
  return detectors.get_method(name)


def split_list(text: str | None) -> list[str] | None:
  if text is None:
    return None
  items = [t.strip() for t in text.split(",") if t.strip()]
  if not items:
    raise ConfigError(f"empty list {text!r}")
  return items


def seed_list(text: str | None) -> list[int] | None:
  """``--seeds 0,1,2`` as ints (None when absent); ConfigError naming the flag."""
  items = split_list(text)
  if items is None:
    return None
  try:
    return [int(t) for t in items]
  except ValueError:
    raise ConfigError(f"--seeds must be comma-separated integers, got {text!r}") from None


def add_scene_args(q) -> None:
  """SCENE, --key/--gt-key and the band options of detect/info/train."""
  q.add_argument("scene", metavar="SCENE",
                 help="scene file (.mat/.npy/.npz/ENVI .hdr) or 'synthetic'")
  q.add_argument("--key", default=None, help="variable holding the cube")
  q.add_argument("--gt-key", dest="gt_key", default=None,
                 help="variable holding the ground-truth map")
  q.add_argument("--bands", default=None, metavar="LIST",
                 help="file bands to keep: 0-based indices and inclusive ranges, "
                      "e.g. 0-99,120-149 (default all)")
  q.add_argument("--bad-bands", dest="bad_bands", default=None, metavar="LIST",
                 help="file bands to drop (dead or water-absorption bands), "
                      "e.g. 103-107,150-165")
  q.add_argument("--keep-constant-bands", dest="keep_constant_bands",
                 action="store_true",
                 help="refuse a cube with constant (zero-variance) bands instead "
                      "of dropping them with a notice")


def add_progress_arg(q) -> None:
  q.add_argument("--progress", action="store_true",
                 help="show progress on stderr even when it is not a terminal")
