"""The embedded server on a shared host (issue 12): password auth, a private socket folder however long the home
path, no permission change above the data, a cluster made with ``trust`` converted. Each test starts its own
server in a subprocess (its own home), so the session's server is untouched."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

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
st = __import__("os").stat(host)
print(json.dumps({"host": host, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "display": info.url,
                  "without_password": without_password, "hba": hba, "listen": listen}))
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
