"""`lrrjax train`: the generalised LRR-Net+ across a folder of scenes, or the
per-scene network on one scene, with checkpoints."""

import os
import pathlib
import sys
from typing import Any

from lrrjax import provenance
from lrrjax.cli import common
from lrrjax.errors import ConfigError


def train_folder(folder, workdir: str | os.PathLike, overrides: dict[str, Any] | None = None,
                 seed: int | None = None, progress=None, export=None,
                 allow_suite: bool = False, not_comparable: str | None = None) -> dict[str, Any]:
  """Trains the generalised LRR-Net+ across every scene of `folder` (any band
  counts); writes `workdir/lrrnet_plus.json` and, with `export`, a copy there."""
  from lrrjax.lrr import config as lrr_config  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import cross  # pylint: disable=import-outside-toplevel
  config = lrr_config.get_general_config()
  common.apply_overrides(config, overrides or {})
  if seed is not None:
    config.seed = int(seed)
  rec = cross.train_from_folder(folder, workdir, config, progress=progress,
                                allow_suite=allow_suite, not_comparable=not_comparable)
  if export is not None:
    export = pathlib.Path(export)
    export.parent.mkdir(parents=True, exist_ok=True)
    tmp = export.with_name(export.name + ".tmp")
    tmp.write_bytes(pathlib.Path(rec["parameters"]).read_bytes())
    tmp.replace(export)
    rec["exported"] = str(export)
  return rec


def train(scene, workdir: str | os.PathLike, overrides: dict[str, Any] | None = None,
          seed: int | None = None, progress=None,
          not_comparable: str | None = None) -> dict[str, Any]:
  """Trains the per-scene LRR-Net+ on one scene, checkpointing in `workdir` (resumes from it).

  `not_comparable` (a reason, e.g. the benchmark suite the scene belongs to)
  is recorded in train.json; such a run's results are not comparable.
  """
  from lrrjax.lrr import config as lrr_config  # pylint: disable=import-outside-toplevel
  config = lrr_config.get_config()
  common.apply_overrides(config, overrides or {})
  from lrrjax.lrr import train as lrr_train  # pylint: disable=import-outside-toplevel
  if seed is not None:
    config.seed = int(seed)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  x_bn = scene.x_bn(config.normalize)
  kwargs = {"workdir": str(workdir)}
  if progress is not None:
    kwargs["progress"] = progress
  result = lrr_train.train(x_bn, config, **kwargs)
  loss = list(result.history.get("loss", []))
  steps = list(result.history.get("step", []))
  rec = {"scene": scene.name, "workdir": str(workdir),
         "steps": int(steps[-1]) if steps else 0,
         "max_steps": int(config.train.steps), "seconds": float(result.seconds),
         "final_loss": float(loss[-1]) if loss else None}
  if not_comparable:
    rec["not_comparable"] = not_comparable
  provenance.write_json(workdir / "train.json",
                        {**rec, "history": result.history,
                         "provenance": provenance.record(config=config,
                                                         seed=config.seed)})
  return rec


def train_progress(args):
  """A `train` progress callback ``(step, {name: value})`` printing steps done,
  rate and ETA against ``train.steps`` (None when progress is off)."""
  from lrrjax import progress as progress_mod  # pylint: disable=import-outside-toplevel
  if not common.progress_enabled(args):
    return None
  from lrrjax.lrr import config as lrr_config  # pylint: disable=import-outside-toplevel
  config = common.apply_overrides(lrr_config.get_config(), common.parse_sets(args.set))
  meter = progress_mod.Progress(max(int(config.train.steps), 1), "steps", "train",
                                enabled=True, interval=0.0)

  def show(step, values=None):
    if isinstance(values, dict):
      note = " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in values.items())
      meter.update(max(int(step) - meter.done, 0), note=note)
    else:
      common.notice(" ".join(str(p) for p in (step, values) if p is not None))

  return show


def cmd_train(args) -> int:
  from lrrjax import suite  # pylint: disable=import-outside-toplevel
  suite_dir = None
  if args.scene != "synthetic":
    suite_dir = suite.check_not_suite(args.scene, allow=args.allow_suite_data)
  reason = None
  if suite_dir is not None:
    reason = f"trained on benchmark-suite data ({suite_dir}): not comparable"
    print(f"warning: {reason}", file=sys.stderr)
  if args.scene != "synthetic" and pathlib.Path(args.scene).is_dir():
    if args.key is not None or args.gt_key is not None:
      raise ConfigError("--key/--gt-key apply to one scene file, not to a folder")
    rec = train_folder(args.scene, args.workdir, common.parse_sets(args.set), args.seed,
                       progress=common.progress_fn(args), export=args.export,
                       allow_suite=args.allow_suite_data, not_comparable=reason)
    print(f"trained lrrnet-plus across {len(rec['scenes'])} scenes in {rec['seconds']:.1f}s "
          f"-> {rec['parameters']}" + (f" (copied to {rec['exported']})"
                                       if "exported" in rec else ""))
    return 0
  if args.export is not None:
    raise ConfigError("--export applies to cross-scene training (a folder of scenes)")
  scene = common.load(args.scene, args.key, args.gt_key, **common.band_options(args))
  rec = train(scene, args.workdir, common.parse_sets(args.set), args.seed,
              progress=train_progress(args), not_comparable=reason)
  loss = "" if rec["final_loss"] is None else f" final loss {rec['final_loss']:.6g}"
  print(f"trained lrrnet-plus on {rec['scene']}: {rec['steps']} steps{loss} "
        f"in {rec['seconds']:.2f}s -> {rec['workdir']}")
  return 0
