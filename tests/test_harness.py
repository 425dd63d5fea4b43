"""The test harness's own hygiene: what a run of the suite leaves on the machine."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from . import conftest


def test_a_test_process_removes_the_data_directories_of_ended_ones(tmp_path, monkeypatch):
    """Each test process's chDB data directory outlives it (chDB holds it until the process is gone):
    the next test process removes those whose process has ended, and only those."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True).stdout.strip()
    dirs = {name: tmp_path / f"gamelens-test-{name}" for name in ("ended", "running", "unowned")}
    for path in dirs.values():
        path.mkdir()
    (dirs["ended"] / conftest.OWNER).write_text(ended)
    (dirs["running"] / conftest.OWNER).write_text(str(os.getpid()))
    made = conftest._own_data_dir()
    assert not dirs["ended"].exists()
    assert dirs["running"].exists() and dirs["unowned"].exists()
    assert made.parent == tmp_path and (made / conftest.OWNER).read_text() == str(os.getpid())
