"""`lrrjax export`: the generalised LRR-Net+ as a jax.export file (lrrjax.export)."""

from lrrjax.errors import ConfigError


def cmd_export(args) -> int:
  """`lrrjax export`: the generalised LRR-Net+ as a jax.export file (lrrjax.export)."""
  from lrrjax import export as ex  # pylint: disable=import-outside-toplevel
  from lrrjax.lrr import cross  # pylint: disable=import-outside-toplevel
  if args.check is not None:
    loaded = ex.load_detector(args.check)
    e = loaded.exported
    print(f"{args.check}: {ex.FORMAT} version {loaded.meta.get('version')}, "
          f"{e.in_avals[0].str_short()} -> {e.out_avals[0].str_short()}, "
          f"platforms {','.join(e.platforms)}")
    return 0
  if args.out is None:
    raise ConfigError("lrrjax export needs --out FILE (or --check FILE)")
  platforms = ex.parse_platforms(args.platforms)
  params = ex.parameters_file(args.checkpoint)
  if args.checkpoint is None and not params.exists():
    raise ConfigError(f"no packaged pretrained LRR-Net+ parameters ({params}); pass "
                      f"--checkpoint DIR (the --workdir of a cross-scene `lrrjax train`, "
                      f"holding {cross.WORKDIR_FILE})")
  model, cfg, _ = cross.load_pretrained(params)
  out = ex.write_export(args.out, model, cfg, platforms, source=str(params))
  print(f"wrote {out} ({out.stat().st_size} bytes): scores[h, w] = f(cube float32[h, w, b]), "
        f"platforms {','.join(platforms)}, parameters {params}")
  return 0


def add_parser(sub) -> None:
  q = sub.add_parser("export", help="write the generalised LRR-Net+ as a jax.export file "
                     "(runs with jax alone)")
  q.add_argument("--out", default=None, metavar="FILE", help="export file to write")
  q.add_argument("--checkpoint", default=None, metavar="DIR",
                 help="workdir of a cross-scene `lrrjax train` (its lrrnet_plus.json) or "
                      "a parameter file (default: the packaged pretrained parameters)")
  q.add_argument("--platforms", default="cpu,cuda,tpu",
                 help="comma-separated lowering platforms (default cpu,cuda,tpu)")
  q.add_argument("--check", default=None, metavar="FILE",
                 help="read an export file and describe it instead of writing one")
  q.set_defaults(func=cmd_export)
