"""System accounts, as root: the server's own account per home, who owns a file, who can enter a folder."""

from __future__ import annotations

import hashlib
import os
import pwd
import subprocess
from pathlib import Path

from jdgraph.errors import ConfigError


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def account_uid(account: str) -> int:
    try:
        return pwd.getpwnam(account).pw_uid
    except KeyError:
        return -1


def chown(path: Path, account: str) -> None:
    entry = pwd.getpwnam(account)
    os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def ensure_account(name: str) -> None:
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    shell = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    try:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", shell, name],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise ConfigError(
            f"started as root, the embedded PostgreSQL needs a system account of its own ({name}) and it could "
            f"not be created: {detail.strip()}. Run as a normal user, or set DATABASE_URL",
            setting="DATABASE_URL",
        ) from exc


def blocked_folder(path: Path, account: str) -> Path | None:
    """The first folder from ``path`` up that ``account`` cannot enter (others' execute bit), or None."""
    try:
        uid = pwd.getpwnam(account).pw_uid
    except KeyError:
        uid = -1
    for folder in [path, *path.parents]:
        if not folder.exists():
            continue
        st = folder.stat()
        if st.st_uid != uid and not st.st_mode & 0o001:
            return folder
    return None


def home_hash(home: Path, n: int) -> str:
    """A stable name part for a home (its account, its data folder under /var/lib/jdgraph)."""
    return hashlib.sha256(str(home).encode()).hexdigest()[:n]
