"""What the store URL and the machine decide: pool sizes, and SQLite kept to one machine."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from runner.errors import StoreError
from runner.store import Store, engine
from runner.store.engine import filesystem_of, parse_url, pool_options

MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
fileserver:/export/ops /mnt/ops nfs4 rw,vers=4.2 0 0
//nas/share /mnt/nas\\040share cifs rw 0 0
/dev/sdb1 /mnt/ops/local ext4 rw 0 0
overlay /srv/overlay fuse.fuse-overlayfs rw 0 0
"""


@pytest.mark.parametrize(("path", "kind"), [
    ("/var/lib/runbook/runs.db", "ext4"),
    ("/mnt/ops/runs.db", "nfs4"),
    ("/mnt/ops", "nfs4"),
    ("/mnt/ops/local/runs.db", "ext4"),  # the longest mount point wins
    ("/mnt/opsx/runs.db", "ext4"),  # a prefix of the name is not a parent directory
    ("/mnt/nas share/runs.db", "cifs"),
    ("/srv/overlay/runs.db", "fuse.fuse-overlayfs"),
])
def test_filesystem_of_finds_the_mount_holding_the_path(path: str, kind: str) -> None:
    assert filesystem_of(Path(path), MOUNTS) == kind


def test_a_sqlite_store_on_a_network_filesystem_is_refused(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    mounts = tmp_path / "mounts"
    state = (tmp_path / "state").resolve()
    state.mkdir()
    (tmp_path / "local").mkdir()
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nnas:/ops {state} nfs4 rw 0 0\n")
    monkeypatch.setattr(engine, "MOUNTS", mounts)
    with pytest.raises(StoreError) as refused:
        Store(f"sqlite:///{state / 'runs.db'}").ping()
    assert f"the SQLite store in {state} is on a nfs4 filesystem" in str(refused.value)
    assert "PostgreSQL" in str(refused.value)
    assert not (state / "runs.db").exists()  # refused before SQLite made the file
    with Store(f"sqlite:///{tmp_path / 'local' / 'runs.db'}") as store:  # a local disk beside it is fine
        store.ping()


def test_a_sqlite_file_that_cannot_be_in_wal_mode_is_refused() -> None:
    class NoWal:  # a cursor whose database answers as one on a filesystem without shared memory would
        def execute(self, _sql: str) -> NoWal:
            return self

        def fetchone(self) -> tuple[str]:
            return ("delete",)

    with pytest.raises(StoreError, match="SQLite refused WAL mode"):
        engine._use_wal(NoWal())


def test_the_sqlite_store_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(f"sqlite:///{path}") as store:
        store.upgrade()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_pool_sizes_ride_in_the_url(postgresql_store_url: str) -> None:
    url = f"{postgresql_store_url}&pool_size=3&max_overflow=2"
    bare, options = pool_options(parse_url(url))
    assert options == {"pool_size": 3, "max_overflow": 2}
    assert "pool_size" not in bare.query and "options" in bare.query  # the driver's own options stay
    with Store(url) as store:
        store.upgrade()
        store.ping()
        pool = store._engine.pool
        assert (pool.size(), pool._max_overflow) == (3, 2)  # type: ignore[attr-defined]
        listener = store.listener(lambda: None)
        assert listener is not None  # its session is opened without the pool options (psycopg refuses them)
        listener.start()
        try:
            deadline = time.monotonic() + 30
            while not listener.listening.is_set() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert listener.listening.is_set()
        finally:
            listener.stop()


@pytest.mark.parametrize("query", ["pool_size=x", "max_overflow=-1", "pool_size=100000"])
def test_a_bad_pool_size_is_a_clear_error(query: str) -> None:
    with pytest.raises(StoreError, match=r"in the database URL: expected a whole number from 0 to 1000"):
        Store(f"postgresql://nobody@127.0.0.1:1/none?{query}")
