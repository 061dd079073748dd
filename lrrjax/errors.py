"""User-facing error types.

The CLI turns any :class:`LrrjaxError` into a one-line ``error: ...`` message and
exit status 2, with no traceback.
"""


class LrrjaxError(Exception):
  """Base class for errors caused by the user's input or configuration."""


class SceneError(LrrjaxError, ValueError):
  """A scene file, key, shape or value is unusable; the message names it."""


class ConfigError(LrrjaxError, ValueError):
  """A configuration value is out of range or inconsistent."""


def in_scene(err: Exception, name: str, source: str = "") -> Exception:
  """``err`` with the scene (and its file) named in front of its message, as an
  error of the same type; ``err`` itself when the message already names either."""
  msg = str(err)
  if name in msg or (source and source in msg):
    return err
  return type(err)(f"scene {name!r}" + (f" ({source})" if source else "") + f": {msg}")
