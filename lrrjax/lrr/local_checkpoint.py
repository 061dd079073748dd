"""Process-local orbax checkpoints while ``jax.distributed`` runs several processes.

Orbax checkpoints are collective under ``jax.distributed``: it refuses to save
a host-local ``jax.Array`` and writes numpy arrays on process 0 only. When the
processes train *different* scenes (``lrrjax.experiment`` splitting a folder
over processes), each one must save its own checkpoint alone. Here the pytree
is saved as numpy arrays by a ``PyTreeCheckpointHandler`` restricted to this
process (``active_processes={me}``, ``primary_host=me``) whose numpy handler
writes on this process whatever its index. The files are the ones a
single-process ``StandardCheckpointHandler`` writes (it wraps the same pytree
handler), so ``lrrjax.lrr.train.restore`` reads them in a single process.
"""

from __future__ import annotations

import functools
from typing import Any, Optional, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp


def multiprocessing_options() -> ocp.options.MultiprocessingOptions:
  """This process alone: its own barriers and its own primary host."""
  me = jax.process_index()
  return ocp.options.MultiprocessingOptions(
      primary_host=me, active_processes={me},
      barrier_sync_key_prefix=f"lrrjax_process{me}")


@functools.cache
def _numpy_handler_class():
  """A NumpyHandler that writes on this process (orbax's writes on process 0 only).

  Built lazily from orbax internals (``_background_serialize`` of orbax
  0.11-0.12); an orbax without them raises ``NotImplementedError`` with the
  version at fault.
  """
  try:
    # pylint: disable=import-outside-toplevel
    from orbax.checkpoint._src.serialization import ocdbt_utils
    from orbax.checkpoint._src.serialization import tensorstore_utils as ts_utils
    from orbax.checkpoint._src.serialization import type_handlers
    base = type_handlers.NumpyHandler
    if not hasattr(base, "_background_serialize") or not hasattr(base, "_open_and_write"):
      raise ImportError("NumpyHandler._background_serialize missing")
  except ImportError as e:
    raise NotImplementedError(
        f"process-local checkpoints need orbax-checkpoint 0.11-0.12 internals "
        f"(installed: {getattr(ocp, '__version__', '?')}): {e}") from e

  class ProcessLocalNumpyHandler(base):
    """NumpyHandler whose writes happen on the calling process."""

    async def _background_serialize(self, values: Sequence[np.ndarray],
                                    infos: Sequence[Any],
                                    args: Optional[Sequence[Any]] = None):
      writes = []
      for value, info, arg in zip(values, infos, args):
        await info.await_path_creation()
        spec = ts_utils.build_array_write_spec(
            info=info, arg=arg, global_shape=value.shape, local_shape=value.shape,
            dtype=value.dtype, use_ocdbt=info.is_ocdbt_checkpoint,
            process_index=ocdbt_utils.get_process_index_for_subdir(
                use_ocdbt=info.is_ocdbt_checkpoint,
                override_ocdbt_process_id=self._override_ocdbt_process_id),
            metadata_key=self._metadata_key)
        writes.append(self._open_and_write(value, spec.json, info.ts_context))
      for w in writes:
        await w

  return ProcessLocalNumpyHandler


def pytree_handler(mp: ocp.options.MultiprocessingOptions) -> ocp.PyTreeCheckpointHandler:
  """Pytree handler for numpy-array trees saved by this process alone."""
  handler = _numpy_handler_class()()
  registry = ocp.type_handlers.create_type_handler_registry(
      (np.ndarray, handler), (np.number, ocp.type_handlers.ScalarHandler()),
      # never used (the trees are numpy); orbax warns about a registry without it
      (jax.Array, ocp.type_handlers.ArrayHandler()))
  return ocp.PyTreeCheckpointHandler(multiprocessing_options=mp,
                                     type_handler_registry=registry)


def to_host(tree):
  """The pytree as numpy arrays (what a process-local checkpoint holds)."""
  return jax.tree.map(np.asarray, jax.device_get(tree))


def save_args(tree) -> ocp.args.PyTreeSave:
  """Save arguments of a process-local pytree item."""
  return ocp.args.PyTreeSave(to_host(tree))


def restore_args(target) -> ocp.args.PyTreeRestore:
  """Restore arguments of a process-local item shaped like ``target`` (as numpy)."""
  item = to_host(target)
  return ocp.args.PyTreeRestore(
      item=item,
      restore_args=jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item))
