"""Backups and point-in-time restore, drilled: a bad load and a dropped table undone to the exact bytes.

One small cluster of the module's own (the shared one is never restored): base backup with the WAL
archive, a bad load through the normal loader, ``riskatlas db restore --before-batch``; a dropped
table, ``riskatlas db restore --to``; and a backup folder that is unwritable or full.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from etl.load import load_file
from layers import backup, cluster, db
from tests.clusters import own_cluster, run_cli, run_json, sources_csv, table_checksums


@pytest.fixture(scope="module")
def primary(region_boundaries_file, tmp_path_factory):
    with own_cluster("backup", region_boundaries_file, tmp_path_factory.mktemp("backup")) as s:
        yield s


def _write_and_read(s) -> int:
    """A write and a read on the primary: it serves."""
    with db.connect(s) as conn:
        conn.execute("INSERT INTO riskatlas.dataset_info (name, value) VALUES ('probe', to_jsonb(now())) "
                     "ON CONFLICT (name) DO UPDATE SET value = excluded.value")
        conn.commit()
        return conn.execute("SELECT count(*) AS n FROM riskatlas.risk_source").fetchone()["n"]


def test_a_cluster_made_before_archiving_takes_it_up_at_its_next_start(primary):
    s = primary
    cluster.stop(s)
    cluster.set_conf(cluster.paths(s).data, {"wal_level": "minimal", "max_wal_senders": "0", "archive_mode": "off"})
    cluster.start(s)
    settings = cluster.psql_admin(s, "SELECT string_agg(setting, ',' ORDER BY name) FROM pg_settings WHERE name IN "
                                     "('archive_mode', 'max_wal_senders', 'wal_level')").strip()
    assert settings == "on,10,replica"
    assert _write_and_read(s) == 20


def test_unwritable_or_full_archive_fails_the_backup_clearly_and_the_primary_serves(primary):
    s = primary
    archive = cluster.wal_archive(s)
    assert not list(archive.iterdir())  # never backed up: no WAL kept
    first = run_json(s, "db", "backup")
    assert first["timeline"] == 1 and (archive / ".keep").exists() and len(list(archive.iterdir())) > 1
    os.chmod(archive, 0o500)  # the postgres user can no longer write the archive
    try:
        done = run_cli(s, "db", "backup", "--json")
        assert done.returncode == 1, done.stdout + done.stderr
        error = json.loads(done.stdout)["error"]
        assert "WAL archiving is failing" in error and "cannot write" in error and str(archive) in error
        assert "primary keeps serving" in error
        assert _write_and_read(s) == 20
        assert backup.archive_state(s)["failing"]
    finally:
        os.chmod(archive, 0o750)
    # the folder is writable again: the waiting WAL is archived and backups work
    backup.wait_archived(s)
    assert not backup.archive_state(s)["failing"]

    # a folder whose disk would drop below the reserve is "full", for the backup and for the archiver
    huge = str(10**9)
    done = run_cli(s, "db", "backup", "--json", RISKATLAS_BACKUP_RESERVE_MB=huge)
    error = json.loads(done.stdout)["error"]
    assert done.returncode == 1 and "is full" in error and str(cluster.backup_root(s)) in error
    script = cluster.paths(s).root / "archive-wal.sh"
    segment = next(f for f in (cluster.paths(s).data / "pg_wal").iterdir() if len(f.name) == 24)
    probe = Path(archive) / "probe"
    probe.mkdir()
    (probe / ".keep").touch()
    try:
        full = subprocess.run([str(script), str(segment), segment.name, str(probe), huge + "000"],
                              capture_output=True, text=True)
        assert full.returncode == 1 and "is full" in full.stderr and [f.name for f in probe.iterdir()] == [".keep"]
        missing = subprocess.run([str(script), str(segment), segment.name, str(probe / "gone"), "0"],
                                 capture_output=True, text=True)
        assert missing.returncode == 1 and "is missing" in missing.stderr
    finally:
        shutil.rmtree(probe)
    # a missing backup folder (an unmounted volume) is named
    done = run_cli(s, "db", "backup", "--json", RISKATLAS_BACKUP_DIR=str(Path(archive).parent / "unmounted"))
    assert done.returncode == 1 and "does not exist" in json.loads(done.stdout)["error"]
    assert _write_and_read(s) == 20


def test_drill_bad_load_and_dropped_table_restored_to_the_exact_checksums(primary, tmp_path):
    s = primary
    made = run_json(s, "db", "backup")
    assert made["kind"] == "base" and Path(made["path"]).is_dir() and made["bytes"] > 0
    again = run_json(s, "db", "backup", RISKATLAS_BACKUP_KEEP="1")  # the older ones and their WAL go
    assert len(again["removed"]) == 2 and not Path(made["path"]).exists()
    made = again
    oldest = sorted(f.name for f in cluster.wal_archive(s).iterdir() if len(f.name) == 24)[0]
    assert oldest[8:] >= f"{int(made['start_lsn'].split('/')[0], 16):08X}{int(made['start_lsn'].split('/')[1], 16) >> 24:08X}"
    dump = run_json(s, "db", "backup", "--logical")
    assert Path(dump["path"]).stat().st_size > 0
    listed = run_json(s, "db", "backups")
    assert {b["name"] for b in listed["backups"]} >= {made["name"], dump["name"]}
    assert listed["wal_archive"]["files"] > 0 and all(b["age_hours"] >= 0 for b in listed["backups"])

    before = table_checksums(s)
    # the bad load: half of Nanjing's sources overwritten, through the normal loader
    bad = load_file(s, sources_csv(tmp_path / "bad.csv", range(0, 20, 2), "错误", "other"), "risk_source",
                    sandbox=False)
    assert bad.rows_updated == 10 and bad.batch_id is not None
    assert table_checksums(s)["risk_source"] != before["risk_source"]

    done = run_json(s, "db", "restore", "--before-batch", str(bad.batch_id))
    assert done["recovery_target_lsn"] and done["base_backup"] == made["name"]
    assert Path(done["previous_data_dir"]).is_dir()  # the old folder is kept
    assert "kept" in done["note"]
    after = table_checksums(s)
    # the data exactly as before; the tile cache's epoch drawn anew, so no tile cached after the bad load is served
    assert after.pop("tile_epoch") != before["tile_epoch"]
    assert after == {t: h for t, h in before.items() if t != "tile_epoch"}

    # a table dropped by mistake: restore to a moment before the drop
    with db.connect(s) as conn:
        moment = conn.execute("SELECT clock_timestamp() AS t").fetchone()["t"]
        conn.execute("DROP TABLE riskatlas.monitoring_station CASCADE")
        conn.commit()
    assert "monitoring_station" not in table_checksums(s)
    done = run_json(s, "db", "restore", "--to", moment.isoformat())
    assert done["timeline"] >= 3
    after = table_checksums(s)
    after.pop("tile_epoch")
    assert after == {t: h for t, h in before.items() if t != "tile_epoch"}
    assert _write_and_read(s) == 20


def test_restore_refuses_clearly(primary):
    done = run_cli(primary, "db", "restore", "--to", "yesterday")
    assert done.returncode == 1 and "ISO 8601" in done.stderr
    done = run_cli(primary, "db", "restore", "--to", "2000-01-01T00:00:00")
    assert done.returncode == 1 and "no base backup ends before" in done.stderr
    done = run_cli(primary, "db", "restore", "--before-batch", "999999")
    assert done.returncode == 1 and "999999" in done.stderr
    done = run_cli(primary, "db", "restore")
    assert done.returncode == 2 and "exactly one" in done.stderr


def test_restore_with_the_primary_stopped_replays_its_unarchived_wal(primary):
    """The primary is down (the usual case): its last, never archived WAL is replayed from its folder."""
    s = primary
    with db.connect(s) as conn:
        conn.execute("INSERT INTO riskatlas.dataset_info (name, value) VALUES ('kept', '1')")
        conn.commit()
        moment = conn.execute("SELECT clock_timestamp() AS t").fetchone()["t"]
        conn.execute("INSERT INTO riskatlas.dataset_info (name, value) VALUES ('undone', '1')")
        conn.commit()
    cluster.stop(s)
    done = run_json(s, "db", "restore", "--to", moment.isoformat())
    assert Path(done["previous_data_dir"]).is_dir()
    with db.connect(s) as conn:
        names = {r["name"] for r in conn.execute("SELECT name FROM riskatlas.dataset_info "
                                                 "WHERE name IN ('kept', 'undone')").fetchall()}
    assert names == {"kept"}
