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
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import LightnormError

STORE_NAME = "results.sqlite"
SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "error")

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
    lightnorm_version TEXT NOT NULL
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
    PRIMARY KEY (collection, spec_hash)
);
CREATE TABLE IF NOT EXISTS skipped (
    collection TEXT NOT NULL,
    point TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (collection, point)
);
"""


class StoreError(LightnormError):
    """The results store is missing, not a lightnorm store, or damaged: exit 2."""


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


def _row(r: sqlite3.Row) -> StageRow:
    return StageRow(r["id"], r["spec_hash"], r["spec_name"], r["stage"], r["stage_key"],
                    json.loads(r["tool_versions"]), json.loads(r["inputs"]), r["status"],
                    r["reason"], None if r["metrics"] is None else json.loads(r["metrics"]),
                    r["started"], r["finished"], r["duration_s"])


class ResultStore:
    """A results store in ``directory`` (created when ``create``; else it must exist)."""

    def __init__(self, directory: str | os.PathLike[str], create: bool = True,
                 timeout_s: float = 60.0) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STORE_NAME
        if not create and not self.path.is_file():
            raise StoreError(f"results store {self.path}: not found (run `lightnorm flow` or "
                             "`lightnorm sweep` with -o pointing there first)")
        if create:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.timeout_s = timeout_s
        try:
            with self._connect() as con:
                con.executescript(_SCHEMA)
                con.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                            (str(SCHEMA_VERSION),))
                got = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"results store {self.path}: not a lightnorm results database "
                             f"({exc})") from exc
        if got is None or got[0] != str(SCHEMA_VERSION):
            raise StoreError(f"results store {self.path}: schema version "
                             f"{None if got is None else got[0]}, expected {SCHEMA_VERSION}")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
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
                "INSERT OR IGNORE INTO results (spec_hash, spec_name, stage, stage_key, "
                "tool_versions, inputs, spec_toml, status, reason, metrics, started, finished, "
                "duration_s, host, pid, lightnorm_version) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
            rowid = cur.lastrowid if cur.rowcount else None
            if rowid is None:
                r = con.execute("SELECT * FROM results WHERE stage_key = ? AND status IN "
                                "('ok', 'failed')", (stage_key,)).fetchone()
            else:
                r = con.execute("SELECT * FROM results WHERE id = ?", (rowid,)).fetchone()
        return _row(r)

    def add_member(self, collection: str, spec_hash: str, spec_name: str, spec_toml: str,
                   preset: bool, point: Mapping[str, Any] | None = None) -> None:
        with self._write() as con:
            con.execute("INSERT OR IGNORE INTO members VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (collection, spec_hash, spec_name, spec_toml, int(preset),
                         None if point is None else json.dumps(dict(point), sort_keys=True),
                         utc_now()))

    def add_skipped(self, collection: str, point: str, reason: str) -> None:
        with self._write() as con:
            con.execute("INSERT OR REPLACE INTO skipped VALUES (?, ?, ?)",
                        (collection, point, reason))

    # --- reading ------------------------------------------------------------------------------
    def verdict(self, stage_key: str) -> StageRow | None:
        """The ``ok`` or ``failed`` row recorded for ``stage_key``, if any."""
        with self._connect() as con:
            r = con.execute("SELECT * FROM results WHERE stage_key = ? AND status IN "
                            "('ok', 'failed')", (stage_key,)).fetchone()
        return None if r is None else _row(r)

    def rows(self, spec_hash: str | None = None, stage: str | None = None) -> list[StageRow]:
        """Every recorded row (oldest first), optionally of one spec and/or stage."""
        q, args = "SELECT * FROM results WHERE 1 = 1", list[str]()
        if spec_hash is not None:
            q, args = q + " AND spec_hash = ?", [*args, spec_hash]
        if stage is not None:
            q, args = q + " AND stage = ?", [*args, stage]
        with self._connect() as con:
            return [_row(r) for r in con.execute(q + " ORDER BY id", args)]

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
        return [{"collection": r["collection"], "spec_hash": r["spec_hash"],
                 "spec": r["spec_name"], "spec_toml": r["spec_toml"], "preset": bool(r["preset"]),
                 "point": None if r["point"] is None else json.loads(r["point"])} for r in rows]

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

