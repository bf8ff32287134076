"""What a home may hold: folders and files of the invoking user that no one else can write, read and replaced
without following links."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shlex
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from jdgraph.catalog.embedded.accounts import account_uid, chown, user_name
from jdgraph.errors import ConfigError


def others_can_write(st: os.stat_result) -> bool:
    """Someone but the owner may write: others' write bit, or the group's unless it is the owner's own private group
    (Debian's user private groups, umask 002)."""
    if st.st_mode & 0o002:
        return True
    if not st.st_mode & 0o020:
        return False
    try:
        group, user = grp.getgrgid(st.st_gid), pwd.getpwuid(st.st_uid)
    except KeyError:
        return True
    return group.gr_name != user.pw_name or not set(group.gr_mem) <= {user.pw_name}


def check_home(home: Path) -> None:
    """The home must be a folder of the invoking user that no one else can write, under parents no one else can
    rename it in: otherwise another user could have made it first (in a shared ``/tmp``) with a password they know,
    links to root's files, or a ``pgdata`` of their own."""
    st = os.stat(home)
    me = os.geteuid()
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"JDGRAPH_HOME {home} is not a folder", setting="JDGRAPH_HOME")
    if st.st_uid != me:
        raise ConfigError(
            f"JDGRAPH_HOME {home} belongs to {user_name(st.st_uid)}, not to you ({user_name(me)}): a folder "
            "another user made could hold a password they know or links to your files. Use a home of your own "
            "(set JDGRAPH_HOME to a folder you own), or remove that one and let jdgraph make it",
            setting="JDGRAPH_HOME",
        )
    if others_can_write(st):
        raise ConfigError(
            f"JDGRAPH_HOME {home} can be written by others (mode {stat.S_IMODE(st.st_mode):o}): they could plant "
            f"files in it. Run `chmod go-w {shlex.quote(str(home))}`, or use another JDGRAPH_HOME",
            setting="JDGRAPH_HOME",
        )
    for parent in home.parents:
        pst = os.stat(parent)
        if others_can_write(pst) and not pst.st_mode & stat.S_ISVTX:
            raise ConfigError(
                f"{parent}, above JDGRAPH_HOME {home}, can be written by others without the sticky bit: they could "
                "replace the home. Use a JDGRAPH_HOME under a folder only you (or root) can write",
                setting="JDGRAPH_HOME",
            )


def check_entry(path: Path, *, owner: str | None, private: bool = False) -> os.stat_result | None:
    """``path`` (None when absent) must be no symlink, belong to ``owner`` (None: the invoking user) and be writable
    by no one else; ``private``: not even readable by others."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(
            f"{path} is a symbolic link: jdgraph does not read or write through links in its home (another user "
            "could point them at your files). Remove it (and check who made it)",
            setting="JDGRAPH_HOME",
        )
    expected = os.geteuid() if owner is None else account_uid(owner)
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != expected:
        problem = f"belongs to {user_name(st.st_uid)}, not to {owner or user_name(expected)}"
    elif others_can_write(st) or (private and mode & 0o077):
        problem = f"can be {'read or written' if private else 'written'} by others (mode {mode:o})"
    else:
        return st
    raise ConfigError(
        f"{path} {problem}: another user could have planted it or could change it. Remove it (and check who made "
        "it), or use another JDGRAPH_HOME",
        setting="JDGRAPH_HOME",
    )


def read_text(path: Path) -> str:
    """A file's text, refusing a symlink (``O_NOFOLLOW``: ELOOP)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        return f.read()


def replace_file(path: Path, text: str) -> None:
    """Write ``path`` atomically through a fresh temp file (``O_EXCL``: never an existing file or link)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)  # a rename replaces a link at ``path``; it never writes through it
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def is_private(path: Path) -> bool:
    """A folder only its owner can enter (what a socket folder must be)."""
    try:
        return path.is_dir() and path.stat().st_mode & 0o077 == 0
    except OSError:
        return False


@contextlib.contextmanager
def private_dir(near: Path, account: str | None, password: str) -> Iterator[Path]:
    """A password file for initdb in a fresh private folder, written before ``account`` owns the folder (so that
    account cannot put a link where root writes)."""
    path = Path(tempfile.mkdtemp(prefix=".pg-scratch-", dir=near))
    pwfile = path / "pw"
    try:
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if account:
            chown(pwfile, account)
            chown(path, account)
        yield pwfile
    finally:
        shutil.rmtree(path, ignore_errors=True)
