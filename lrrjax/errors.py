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
