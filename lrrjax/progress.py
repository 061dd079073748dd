"""Progress lines on stderr: done / total, rate and ETA.

``Progress(total, unit)`` is a tiny tqdm-like meter (no dependency):
``update(n)`` adds ``n`` units of work and, at most every ``interval``
seconds, writes ``desc: done/total unit (pct%) rate unit/s ETA m:ss``. On a
terminal the line is redrawn in place (carriage return); otherwise one line
per update. A disabled meter writes nothing. Rate = done / elapsed since the
first update's reference time, ETA = (total - done) / rate.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def enabled(flag: bool = False, stream: TextIO | None = None) -> bool:
  """Progress is shown when ``flag`` (``--progress``) is set or the stream is a terminal."""
  stream = sys.stderr if stream is None else stream
  try:
    tty = stream.isatty()
  except (AttributeError, ValueError):
    tty = False
  return bool(flag) or tty


def fmt_time(seconds: float) -> str:
  if seconds != seconds or seconds == float("inf"):  # NaN / inf
    return "?"
  s = int(round(seconds))
  h, rem = divmod(s, 3600)
  m, s = divmod(rem, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _fmt_count(v: float) -> str:
  for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
    if abs(v) >= div:
      return f"{v / div:.3g}{suffix}"
  return f"{v:.3g}" if isinstance(v, float) and not float(v).is_integer() else f"{int(v)}"


class Progress:
  """A progress meter writing to ``stream`` (default stderr).

  Args:
    total: units of work in all (> 0), e.g. pixels or cells.
    unit: name of one unit ("px", "cells", "steps").
    desc: label at the start of the line.
    enabled: write anything at all (see :func:`enabled`).
    interval: minimum seconds between two lines (the final one always shows).
    stream: where to write.
  """

  def __init__(self, total: float, unit: str = "it", desc: str = "",
               enabled: bool = True, interval: float = 0.5,  # pylint: disable=redefined-outer-name
               stream: TextIO | None = None):
    self.total = float(total)
    self.unit = unit
    self.desc = desc
    self.enabled = enabled
    self.interval = interval
    self.stream = sys.stderr if stream is None else stream
    self.done = 0.0
    self.t0 = time.perf_counter()
    self._last = -float("inf")
    try:
      self._tty = self.stream.isatty()
    except (AttributeError, ValueError):
      self._tty = False

  def line(self, now: float | None = None) -> str:
    """The current progress text."""
    now = time.perf_counter() if now is None else now
    elapsed = max(now - self.t0, 1e-9)
    rate = self.done / elapsed
    eta = (self.total - self.done) / rate if rate > 0 else float("nan")
    pct = 100.0 * self.done / self.total if self.total > 0 else 100.0
    head = f"{self.desc}: " if self.desc else ""
    return (f"{head}{_fmt_count(self.done)}/{_fmt_count(self.total)} {self.unit} "
            f"({pct:.0f}%) {_fmt_count(rate)} {self.unit}/s "
            f"elapsed {fmt_time(elapsed)} ETA {fmt_time(eta)}")

  def update(self, n: float = 1, note: str = "") -> None:
    """Adds ``n`` units; writes a line if ``interval`` has passed or work is complete."""
    self.done += n
    if not self.enabled:
      return
    now = time.perf_counter()
    final = self.done >= self.total
    if now - self._last < self.interval and not final:
      return
    self._last = now
    text = self.line(now) + (f" {note}" if note else "")
    if self._tty:
      end = "\n" if final else ""
      self.stream.write("\r\x1b[K" + text + end)
    else:
      self.stream.write(text + "\n")
    self.stream.flush()

  def close(self) -> None:
    """Ends an in-place line that did not reach ``total`` (e.g. after an error)."""
    if self.enabled and self._tty and self.done < self.total:
      self.stream.write("\n")
      self.stream.flush()
