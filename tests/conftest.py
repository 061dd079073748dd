"""Shared pytest fixtures."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]

# The command line's persistent compilation cache (lrrjax.cli.common) stays off
# in tests, in process and in the subprocesses they start: no test writes to
# the home folder, and no test's timing or result depends on an earlier run.
# tests/test_cli.py turns it on in a temporary folder to test it.
os.environ["LRRJAX_COMPILE_CACHE"] = "off"


def _data_dir() -> pathlib.Path:
  env = os.environ.get("LRRJAX_DATA_DIR")
  if env:
    return pathlib.Path(env)
  return (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
  """The folder of real scenes; in CI a missing folder fails instead of skipping."""
  path = _data_dir()
  if not (path / "abu-airport-1.mat").exists():
    if os.environ.get("CI", "").lower() == "true":
      pytest.fail(f"real scenes not found in {path} (set LRRJAX_DATA_DIR)")
    pytest.skip(f"real scenes not found in {path}")
  return path
