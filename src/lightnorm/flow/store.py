"""The results store: one SQLite database per output directory (``DIR/results.sqlite``).

Tables
------
``results``  one row per stage run: spec hash and name, stage, the stage key (a digest of
             everything the stage depends on: spec, stage inputs, templates, tool versions),
             tool versions, inputs, the spec (TOML), status (``ok``, ``failed`` - a verdict such
             as a bit mismatch - or ``error`` - a tool or input error), reason, metrics (JSON),
             start/finish times, host and process.
``members``  which specs belong to which collection (``flow`` for ``lightnorm flow``, the sweep
             name for a sweep), with the sweep point's coordinates and whether it is a preset.
``skipped``  sweep points that are not valid specs, with the ``SpecError`` text.

Rules
-----
* Rows are only ever inserted. A stage with the same key and a verdict (``ok`` / ``failed``) is
  not run again: the flow reads the row instead. A unique partial index on ``stage_key`` for
  those statuses makes a second writer of the same result a no-op (``INSERT OR IGNORE``), so two
  processes racing on one stage record it once. ``error`` rows accumulate (one per attempt).
  A rerun with changed tools or templates has a new key and adds new rows; old rows stay.
* WAL journal, a busy timeout, one short ``BEGIN IMMEDIATE`` transaction per write: several
  processes (a process pool, Dask workers on this machine) write safely. A process killed
  mid-stage has written nothing for that stage. SQLite over a network filesystem is not safe:
  Dask workers on other machines need DIR on a local disk of a shared host, see docs/flow.md.
* ``leases``: a run claims a stage key before it runs the stage (owner host, pid and the pid's
  start time, renewed while it runs) and drops the claim when the stage is recorded. Another
  run that needs the same key waits for the verdict instead of computing it again; a claim
  whose owner is dead (same host: no such process; any host: not renewed for
  :data:`LEASE_STALE_S`) is taken over. Recording a verdict drops its claim in the same
  transaction.

Damage
------
Opening a store runs SQLite's integrity check, and every ``results`` and ``members`` row carries
a sha256 of its content, checked when it is read: a damaged page or an edited row is a
:class:`StoreError` (exit 2) naming the file and how to recover (move it aside: the tool caches
make rerunning cheap), never a verdict read from it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import LightnormError

STORE_NAME = "results.sqlite"
SCHEMA_VERSION = 2
STATUSES = ("ok", "failed", "error")
#: a claim not renewed for this long is dead, whatever host holds it (owners renew every
#: LEASE_RENEW_S while the stage runs)
LEASE_STALE_S = 120.0
LEASE_RENEW_S = 20.0
#: stores larger than this get SQLite's quick_check on open instead of the full integrity_check
FULL_CHECK_BYTES = 64 << 20
#: held while this process writes a store: a worker that must exit (its parent died) takes it
#: first, so a stage being recorded is recorded whole
WRITE_LOCK = threading.RLock()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec_hash TEXT NOT NULL,
    spec_name TEXT NOT NULL,
    stage TEXT NOT NULL,
    stage_key TEXT NOT NULL,
    tool_versions TEXT NOT NULL,
    inputs TEXT NOT NULL,
    spec_toml TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'error')),
    reason TEXT,
    metrics TEXT,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    duration_s REAL NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    lightnorm_version TEXT NOT NULL,
    row_digest TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS results_verdict ON results (stage_key)
    WHERE status IN ('ok', 'failed');
CREATE INDEX IF NOT EXISTS results_spec_stage ON results (spec_hash, stage, id);
CREATE TABLE IF NOT EXISTS members (
    collection TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    spec_name TEXT NOT NULL,
    spec_toml TEXT NOT NULL,
    preset INTEGER NOT NULL,
    point TEXT,
    added TEXT NOT NULL,
    row_digest TEXT,
    PRIMARY KEY (collection, spec_hash)
);
CREATE TABLE IF NOT EXISTS skipped (
    collection TEXT NOT NULL,
    point TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (collection, point)
);
"""
_LEASES = """
CREATE TABLE IF NOT EXISTS leases (
    stage_key TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_start TEXT,
    taken TEXT NOT NULL,
    renewed REAL NOT NULL
)
"""

#: the columns each row digest covers, in order
_RESULT_COLS = ("spec_hash", "spec_name", "stage", "stage_key", "tool_versions", "inputs",
                "spec_toml", "status", "reason", "metrics", "started", "finished", "duration_s",
                "host", "pid", "lightnorm_version")
_MEMBER_COLS = ("collection", "spec_hash", "spec_name", "spec_toml", "preset", "point", "added")
RECOVER = ("move it aside (mv {path} {path}.damaged) and run the same command again: the "
           "stages are recomputed, the tool caches make that cheap")


def _digest(values: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(list(values), separators=(",", ":")).encode()).hexdigest()


class StoreError(LightnormError):
    """The results store is missing, not a lightnorm store, damaged or unusable: exit 2."""


def _damaged(path: Path, what: str) -> StoreError:
    return StoreError(f"results store {path} is damaged ({what}); " + RECOVER.format(path=path))


def _store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """The StoreError for an SQLite error, by its kind (damage, a busy store, the disk)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name == "SQLITE_NOTADB":
        return StoreError(f"results store {path}: not a lightnorm results database ({exc}); "
                          + RECOVER.format(path=path))
    if name.startswith("SQLITE_CORRUPT") or "malformed" in str(exc):
        return _damaged(path, str(exc))
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(f"results store {path}: still locked by another process after the "
                          f"busy timeout ({exc})")
    return StoreError(f"results store {path}: {exc}")


@dataclass(frozen=True)
class Lease:
    """Who holds the claim on a stage key."""

    stage_key: str
    host: str
    pid: int
    pid_start: str | None
    taken: str
    renewed: float

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.taken}"


def _pid_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot; tells a reused pid from the
    owner), or None where /proc does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def _alive(lease: Lease, now: float) -> bool:
    """Whether the owner of ``lease`` may still be running its stage."""
    if now - lease.renewed > LEASE_STALE_S:
        return False
    if lease.host != socket.gethostname():
        return True
    try:
        os.kill(lease.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    start = _pid_start(lease.pid)
    return lease.pid_start is None or start is None or start == lease.pid_start


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class StageRow:
    """One recorded stage run."""

    id: int
    spec_hash: str
    spec_name: str
    stage: str
    stage_key: str
    tool_versions: dict[str, Any]
    inputs: dict[str, Any]
    status: str
    reason: str | None
    metrics: dict[str, Any] | None
    started: str
    finished: str
    duration_s: float

    def to_summary(self) -> dict[str, Any]:
        """The stage entry of a report summary (lightnorm.reports.report)."""
        return {"status": self.status, "reason": self.reason, "finished": self.finished,
                "duration_s": self.duration_s, "tool_versions": self.tool_versions,
                "metrics": self.metrics, "inputs": self.inputs}


def _row(path: Path, r: sqlite3.Row) -> StageRow:
    """A checked results row: its digest matches and its JSON columns parse."""
    if r["row_digest"] != _digest([r[c] for c in _RESULT_COLS]):
        raise _damaged(path, f"results row {r['id']} does not match its checksum")
    try:
        return StageRow(r["id"], r["spec_hash"], r["spec_name"], r["stage"], r["stage_key"],
                        json.loads(r["tool_versions"]), json.loads(r["inputs"]), r["status"],
                        r["reason"], None if r["metrics"] is None else json.loads(r["metrics"]),
                        r["started"], r["finished"], r["duration_s"])
    except (TypeError, ValueError) as exc:
        raise _damaged(path, f"results row {r['id']} holds malformed JSON ({exc})") from exc


class ResultStore:
    """A results store in ``directory`` (created when ``create``; else it must exist).

    ``check``: verify the whole store on open - SQLite's integrity check and every row's
    checksum - so that damage stops a command before it does any work. A command checks once;
    its pool workers open the store without (each row they read is still verified).
    """

    def __init__(self, directory: str | os.PathLike[str], create: bool = True,
                 timeout_s: float = 60.0, check: bool = True) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STORE_NAME
        if not create and not self.path.is_file():
            raise StoreError(f"results store {self.path}: not found (run `lightnorm flow` or "
                             "`lightnorm sweep` with -o pointing there first)")
        if create:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.timeout_s = timeout_s
        existed = self.path.is_file() and self.path.stat().st_size > 0
        try:
            with self._connect() as con:
                if existed and check:
                    self._check(con)
                got = self._setup(con)
        except sqlite3.DatabaseError as exc:  # raised before _connect's block
            raise _store_error(self.path, exc) from exc
        if got is None:
            raise StoreError(f"results store {self.path}: not a lightnorm results database (an "
                             "SQLite file without lightnorm's tables)")
        if got != str(SCHEMA_VERSION):
            raise StoreError(f"results store {self.path}: schema version {got}, expected "
                             f"{SCHEMA_VERSION} (written by another lightnorm version)")
        if existed and check:
            self.rows()
            self.members()  # each row checked against its checksum

    def _setup(self, con: sqlite3.Connection) -> str | None:
        """Create the tables of a new store, or migrate an old one; returns the schema version
        (None: an SQLite file that is not a lightnorm store). One write transaction: processes
        opening a new store at once create it once."""
        con.execute("BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = "
                                                "'table'")}
            if not tables:
                for stmt in (_SCHEMA + ";" + _LEASES).split(";"):
                    if stmt.strip():
                        con.execute(stmt)
                con.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            got = self._schema(con) if "meta" in tables or not tables else None
            if got == "1":
                self._migrate_v1(con)
                got = str(SCHEMA_VERSION)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return got

    def _check(self, con: sqlite3.Connection) -> None:
        """SQLite's own consistency check of every page (quick_check on a large store)."""
        big = self.path.stat().st_size > FULL_CHECK_BYTES
        rows = con.execute("PRAGMA quick_check" if big else "PRAGMA integrity_check").fetchall()
        problems = [str(r[0]) for r in rows if str(r[0]) != "ok"]
        if problems:
            raise _damaged(self.path, f"{len(problems)} problem(s), first: {problems[0]}")

    @staticmethod
    def _schema(con: sqlite3.Connection) -> str | None:
        try:
            got = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.OperationalError:  # no meta table: some other SQLite database
            return None
        return None if got is None else str(got[0])

    def _migrate_v1(self, con: sqlite3.Connection) -> None:
        """Schema 1 -> 2 (inside :meth:`_setup`'s transaction): row checksums of the rows as
        they are (they passed the integrity check) and the leases table."""
        for table, cols in (("results", _RESULT_COLS), ("members", _MEMBER_COLS)):
            con.execute(f"ALTER TABLE {table} ADD COLUMN row_digest TEXT")
            for r in con.execute(f"SELECT rowid, * FROM {table}").fetchall():
                con.execute(f"UPDATE {table} SET row_digest = ? WHERE rowid = ?",
                            (_digest([r[c] for c in cols]), r[0]))
        con.execute(_LEASES)
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection; any SQLite error in the block becomes a StoreError (damage, a busy
        store, a full disk), except the ones only a bug causes."""
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        except sqlite3.Error as exc:
            raise _store_error(self.path, exc) from exc
        try:
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            yield con
        except (sqlite3.ProgrammingError, sqlite3.IntegrityError, sqlite3.InterfaceError):
            raise
        except sqlite3.DatabaseError as exc:
            raise _store_error(self.path, exc) from exc
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with WRITE_LOCK, self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # --- writing ------------------------------------------------------------------------------
    def record(self, *, spec_hash: str, spec_name: str, spec_toml: str, stage: str,
               stage_key: str, tool_versions: Mapping[str, Any], inputs: Mapping[str, Any],
               status: str, reason: str | None, metrics: Mapping[str, Any] | None,
               started: str, duration_s: float, version: str) -> StageRow:
        """Insert one stage run; returns the row that holds the verdict for ``stage_key``
        (an existing one if another process recorded the same verdict first)."""
        if status not in STATUSES:
            raise ValueError(f"status {status!r} not in {STATUSES}")
        values = (spec_hash, spec_name, stage, stage_key,
                  json.dumps(dict(tool_versions), sort_keys=True),
                  json.dumps(dict(inputs), sort_keys=True), spec_toml, status, reason,
                  None if metrics is None else json.dumps(dict(metrics), allow_nan=False),
                  started, utc_now(), float(duration_s), socket.gethostname(), os.getpid(),
                  version)
        with self._write() as con:
            cur = con.execute(
                f"INSERT OR IGNORE INTO results ({', '.join(_RESULT_COLS)}, row_digest) "
                f"VALUES ({', '.join('?' * (len(_RESULT_COLS) + 1))})",
                (*values, _digest(values)))
            rowid = cur.lastrowid if cur.rowcount else None
            # recorded and released in one transaction: no claim outlives its verdict
            con.execute("DELETE FROM leases WHERE stage_key = ? AND host = ? AND pid = ?",
                        (stage_key, socket.gethostname(), os.getpid()))
            if rowid is None:
                r = con.execute("SELECT * FROM results WHERE stage_key = ? AND status IN "
                                "('ok', 'failed')", (stage_key,)).fetchone()
            else:
                r = con.execute("SELECT * FROM results WHERE id = ?", (rowid,)).fetchone()
        return _row(self.path, r)

    def add_member(self, collection: str, spec_hash: str, spec_name: str, spec_toml: str,
                   preset: bool, point: Mapping[str, Any] | None = None) -> None:
        values = (collection, spec_hash, spec_name, spec_toml, int(preset),
                  None if point is None else json.dumps(dict(point), sort_keys=True), utc_now())
        with self._write() as con:
            con.execute(f"INSERT OR IGNORE INTO members ({', '.join(_MEMBER_COLS)}, row_digest) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*values, _digest(values)))

    def add_skipped(self, collection: str, point: str, reason: str) -> None:
        with self._write() as con:
            con.execute("INSERT OR REPLACE INTO skipped VALUES (?, ?, ?)",
                        (collection, point, reason))

    # --- claims on stages (leases) ------------------------------------------------------------
    def claim(self, stage_key: str) -> tuple[str, StageRow | Lease | None]:
        """Claim ``stage_key`` for this process before running its stage.

        Returns ``("verdict", row)`` when a verdict is recorded (nothing to run),
        ``("claimed", None)`` when this process may run the stage (the key was free, already
        ours, or its owner is dead: taken over), or ``("held", lease)`` when a live owner is
        running it: wait and ask again.
        """
        me, pid, now = socket.gethostname(), os.getpid(), time.time()
        with self._write() as con:
            r = con.execute("SELECT * FROM results WHERE stage_key = ? AND status IN "
                            "('ok', 'failed')", (stage_key,)).fetchone()
            if r is not None:
                con.execute("DELETE FROM leases WHERE stage_key = ?", (stage_key,))  # moot
                return "verdict", _row(self.path, r)
            held = con.execute("SELECT * FROM leases WHERE stage_key = ?",
                               (stage_key,)).fetchone()
            if held is not None:
                lease = Lease(held["stage_key"], held["host"], held["pid"], held["pid_start"],
                              held["taken"], held["renewed"])
                if (lease.host, lease.pid) != (me, pid) and _alive(lease, now):
                    return "held", lease
            con.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?)",
                        (stage_key, me, pid, _pid_start(pid), utc_now(), now))
        return "claimed", None

    def renew(self, stage_key: str) -> None:
        """Tell waiting runs that this process is still running the stage."""
        with self._write() as con:
            con.execute("UPDATE leases SET renewed = ? WHERE stage_key = ? AND host = ? AND "
                        "pid = ?", (time.time(), stage_key, socket.gethostname(), os.getpid()))

    def release(self, stage_key: str) -> None:
        """Drop this process's claim (after recording the stage, or giving up on it)."""
        with self._write() as con:
            con.execute("DELETE FROM leases WHERE stage_key = ? AND host = ? AND pid = ?",
                        (stage_key, socket.gethostname(), os.getpid()))

    def leases(self) -> list[Lease]:
        with self._connect() as con:
            return [Lease(r["stage_key"], r["host"], r["pid"], r["pid_start"], r["taken"],
                          r["renewed"]) for r in con.execute("SELECT * FROM leases")]

    # --- reading ------------------------------------------------------------------------------
    def verdict(self, stage_key: str) -> StageRow | None:
        """The ``ok`` or ``failed`` row recorded for ``stage_key``, if any."""
        with self._connect() as con:
            r = con.execute("SELECT * FROM results WHERE stage_key = ? AND status IN "
                            "('ok', 'failed')", (stage_key,)).fetchone()
        return None if r is None else _row(self.path, r)

    def rows(self, spec_hash: str | None = None, stage: str | None = None) -> list[StageRow]:
        """Every recorded row (oldest first), optionally of one spec and/or stage."""
        q, args = "SELECT * FROM results WHERE 1 = 1", list[str]()
        if spec_hash is not None:
            q, args = q + " AND spec_hash = ?", [*args, spec_hash]
        if stage is not None:
            q, args = q + " AND stage = ?", [*args, stage]
        with self._connect() as con:
            return [_row(self.path, r) for r in con.execute(q + " ORDER BY id", args)]

    def latest(self, spec_hash: str) -> dict[str, StageRow]:
        """The newest row of each stage of one spec."""
        out: dict[str, StageRow] = {}
        for row in self.rows(spec_hash):
            out[row.stage] = row
        return out

    def collections(self) -> list[str]:
        with self._connect() as con:
            return [r[0] for r in con.execute("SELECT DISTINCT collection FROM members "
                                              "ORDER BY collection")]

    def members(self, collection: str | None = None) -> list[dict[str, Any]]:
        q, args = "SELECT * FROM members", list[str]()
        if collection is not None:
            q, args = q + " WHERE collection = ?", [collection]
        with self._connect() as con:
            rows = con.execute(q + " ORDER BY added, spec_name", args).fetchall()
        out = []
        for r in rows:
            if r["row_digest"] != _digest([r[c] for c in _MEMBER_COLS]):
                raise _damaged(self.path, f"members row of {r['spec_name']!r} does not match its "
                               "checksum")
            try:
                point = None if r["point"] is None else json.loads(r["point"])
            except ValueError as exc:
                raise _damaged(self.path, f"members row of {r['spec_name']!r} holds malformed "
                               f"JSON ({exc})") from exc
            out.append({"collection": r["collection"], "spec_hash": r["spec_hash"],
                        "spec": r["spec_name"], "spec_toml": r["spec_toml"],
                        "preset": bool(r["preset"]), "point": point})
        return out

    def skipped(self, collection: str | None = None) -> list[dict[str, str]]:
        q, args = "SELECT * FROM skipped", list[str]()
        if collection is not None:
            q, args = q + " WHERE collection = ?", [collection]
        with self._connect() as con:
            return [dict(r) for r in con.execute(q + " ORDER BY point", args)]

    def summaries(self, collections: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """One summary per member spec (the report's input): the newest row of each stage.

        A spec in several collections appears once, under its first sweep if it has one.
        """
        seen: dict[str, dict[str, Any]] = {}
        for m in self.members():
            if collections is not None and m["collection"] not in collections:
                continue
            sweep = None if m["collection"] == "flow" else m["collection"]
            s = seen.get(m["spec_hash"])
            if s is None:
                stages = {k: v.to_summary() for k, v in self.latest(m["spec_hash"]).items()}
                seen[m["spec_hash"]] = {"spec": m["spec"], "spec_hash": m["spec_hash"],
                                        "preset": m["preset"], "sweep": sweep,
                                        "point": m["point"], "stages": stages}
            elif s["sweep"] is None and sweep is not None:
                s["sweep"], s["point"] = sweep, m["point"]
            if m["preset"]:
                seen[m["spec_hash"]]["preset"] = True
        return list(seen.values())

    # --- export -------------------------------------------------------------------------------
    def export_csv(self, spec_hash: str | None = None, stage: str | None = None) -> str:
        """The rows as CSV text (metrics, inputs and tool versions as JSON columns)."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["id", "spec_name", "spec_hash", "stage", "status", "reason", "started",
                    "finished", "duration_s", "stage_key", "tool_versions", "inputs", "metrics"])
        for r in self.rows(spec_hash, stage):
            w.writerow([r.id, r.spec_name, r.spec_hash, r.stage, r.status, r.reason or "",
                        r.started, r.finished, f"{r.duration_s:.3f}", r.stage_key,
                        json.dumps(r.tool_versions, sort_keys=True),
                        json.dumps(r.inputs, sort_keys=True),
                        "" if r.metrics is None else json.dumps(r.metrics, sort_keys=True)])
        return buf.getvalue()

