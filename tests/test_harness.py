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


HANGS = '''
import threading


def test_hangs():
    threading.Thread(target=threading.Event().wait, name="stuck-beside-the-test", daemon=True).start()
    threading.Event().wait()


def test_runs():
    pass
'''


def test_a_hung_test_fails_with_every_thread_s_stack(tmp_path, request):
    """A CI run hung in pass 1 until the CI's own 90 min, with no word of which test: the suite's timeout
    (pyproject.toml) fails a hung test, also on an xdist worker, with every thread's stack, and the run goes on."""
    per_test, stacks = float(request.config.getini("timeout")), float(request.config.getini("faulthandler_timeout"))
    assert 0 < stacks < per_test <= 600  # the stacks come first, and a hang fails long before the CI's limit
    (tmp_path / "test_hangs.py").write_text(HANGS)
    run = subprocess.run([sys.executable, "-m", "pytest", "-c", str(request.config.inipath), "-n", "2",
                          "-p", "no:cacheprovider", "-o", "timeout=3", "-o", "faulthandler_timeout=0",
                          str(tmp_path / "test_hangs.py")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout[-3000:]
    assert "FAILED" in run.stdout and "test_hangs - Failed: Timeout" in run.stdout, run.stdout[-3000:]
    # every thread's stack, not only the test's (the name alone also appears in the failure's source lines)
    assert "Stack of stuck-beside-the-test" in run.stdout, run.stdout[-3000:]
    assert "1 failed, 1 passed" in run.stdout, run.stdout[-3000:]
