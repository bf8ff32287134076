"""Who uses a server: live processes, by pid and start time, in ``$JDGRAPH_HOME/pgdata.users.json``.

A process's start time is taken as the kernel keeps it, in clock ticks since boot (``/proc/PID/stat``), never as a
wall-clock time: psutil's ``create_time()`` adds the boot time, which Linux derives from the wall clock in whole
seconds, so a clock adjustment could move every user's start by a second and make the watcher think them dead (and
stop the server under them). Elsewhere (macOS) the kernel records a fixed start time, which psutil returns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil

from jdgraph.catalog.embedded.home import read_text, replace_file

WALL_CLOCK_START = 1e9
"""A start time above this is a wall-clock one (a users file written by an older jdgraph); ticks since boot are far
smaller."""


def started_at(pid: int) -> float:
    """When ``pid`` started: seconds since boot on Linux, else its recorded creation time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return float(psutil.Process(pid).create_time())  # raises psutil.NoSuchProcess for a pid that is gone
    # Fields after the command name, which is in parentheses and may hold spaces or ")": starttime is field 22.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def alive(pid: int, started: float) -> bool:
    """A pid that is running and is the same process (a reused pid has another start time)."""
    try:
        if started > WALL_CLOCK_START:
            return abs(psutil.Process(pid).create_time() - started) < 2.0
        return abs(started_at(pid) - started) < 1e-3
    except (psutil.Error, ValueError, IndexError):
        return False


def live_users(users_file: Path) -> list[list[float]]:
    """The users ``users_file`` lists that are still alive, as ``[pid, start time]`` (a missing or unreadable file:
    none)."""
    try:
        users = json.loads(read_text(users_file) or "[]")
    except (OSError, ValueError):
        users = []
    return [u for u in users if alive(int(u[0]), float(u[1]))]


def write_users(users_file: Path, users: list[list[float]]) -> None:
    replace_file(users_file, json.dumps(users))


def me() -> list[float]:
    """This process, as the users file lists it."""
    return [os.getpid(), started_at(os.getpid())]
