"""Train and evaluate LRR-Net+ (or any registered detector) from an ml_collections config.

  python experiments/main.py --config=experiments/configs/default.py --workdir=runs/exp
  python experiments/main.py --config=experiments/configs/stages.py:20 \
      --config.scene=../shared/data --workdir=runs/stages20
  python experiments/main.py --config=experiments/configs/default.py \
      --config.lrr.train.steps=200 --workdir=runs/exp --distributed
  python experiments/main.py --config=experiments/configs/default.py \
      --config.scene=../shared/data --workdir=runs/abu --distributed \
      --coordinator=host0:1234 --num_processes=2 --process_id=0   # scenes split

With --distributed and a folder of scenes, process p of P runs scenes p, p + P, ...
and process 0 writes summary.json once (lrrjax.experiment); with
--config.lrr.train.data_parallel=true every process trains every scene together.

The config is locked: a misspelt override (--config.lrr.model.stagez=3) is an error.
"""

import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

FLAGS = flags.FLAGS

flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and figures.")
flags.DEFINE_bool("distributed", False,
                  "Call jax.distributed.initialize() first (multi-host runs); a folder "
                  "of scenes is then split over the processes.")
flags.DEFINE_string("coordinator", None,
                    "jax.distributed coordinator HOST:PORT (default: from the environment).")
flags.DEFINE_integer("num_processes", None,
                     "jax.distributed process count (default: from the environment).")
flags.DEFINE_integer("process_id", None,
                     "This process's jax.distributed index (default: from the environment).")
config_flags.DEFINE_config_file(
    "config", None, "Training configuration file.", lock_config=True)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError("Too many command-line arguments.")
  import jax  # pylint: disable=import-outside-toplevel

  from lrrjax import experiment  # pylint: disable=import-outside-toplevel
  from lrrjax.errors import LrrjaxError  # pylint: disable=import-outside-toplevel

  explicit = [name for name in ("coordinator", "num_processes", "process_id")
              if FLAGS[name].value is not None]
  if explicit and not FLAGS.distributed:
    raise app.UsageError(f"--{', --'.join(explicit)} need(s) --distributed")
  if FLAGS.distributed:
    jax.distributed.initialize(FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id)
  logging.info("JAX process: %d / %d", jax.process_index(), jax.process_count())
  logging.info("JAX local devices: %r", jax.local_devices())
  try:
    experiment.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except (LrrjaxError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
