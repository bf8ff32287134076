"""Who uses the embedded server: a live process stays live whatever the wall clock does, a gone or reused pid does
not, and a users file written by an older jdgraph (wall-clock start times) is still read right."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from jdgraph.catalog.embedded import users


def test_a_live_user_stays_live_when_the_clock_moves_the_boot_time(monkeypatch: pytest.MonkeyPatch) -> None:
    me = users.me()
    assert users.alive(int(me[0]), me[1])
    if sys.platform.startswith("linux"):
        # Linux derives the boot time from the wall clock in whole seconds: an NTP step moved it by one, and
        # every registered process then looked dead to the watcher, which stopped the server under them.
        import psutil._pslinux as pslinux

        real = psutil.boot_time()
        monkeypatch.setattr(pslinux, "boot_time", lambda: real + 1.0)
        assert abs(psutil.Process().create_time() - psutil.Process().create_time()) < 1e-6
        assert users.alive(int(me[0]), me[1])


def test_a_gone_or_reused_pid_is_not_a_user() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = users.started_at(child.pid)
    child.wait()
    assert not users.alive(child.pid, started)
    me = users.me()
    assert not users.alive(int(me[0]), me[1] + 5.0)  # the same pid, another process's start


def test_an_older_users_file_with_wall_clock_start_times_is_read() -> None:
    entry = [os.getpid(), psutil.Process().create_time()]
    assert entry[1] > users.WALL_CLOCK_START
    assert users.alive(int(entry[0]), entry[1])
    assert not users.alive(int(entry[0]), entry[1] - 60)
