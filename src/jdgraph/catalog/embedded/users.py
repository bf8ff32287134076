"""Who uses a server: live processes, by pid and start time, in ``$JDGRAPH_HOME/pgdata.users.json``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psutil

from jdgraph.catalog.embedded.home import read_text, replace_file


def alive(pid: int, started: float) -> bool:
    """A pid that is running and is the same process (a reused pid has another start time)."""
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except psutil.Error:
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
    return [os.getpid(), psutil.Process().create_time()]
