"""Run the flow's stages for specs, reading verdicts from the store instead of redoing them.

:func:`run_spec` runs one spec's stages in order in this process and records each in the store
(one row per stage run, written when the stage ends: a process killed mid-stage leaves nothing
for that stage, so a rerun starts it again). Before running a stage it claims the stage's key
in the store (:meth:`ResultStore.claim`): when another run, in this flow or a concurrent one,
holds the claim, it waits and reuses that run's verdict instead of computing it again.

:func:`run_specs` runs several specs on a local process pool (``spawn``). Each worker watches
its parent: when the flow's process dies (``kill -9``), the worker finishes writing any row it
is writing, kills the processes it started and exits, so nothing is left running; the next run
resumes from the store. A stage that fails or errors is recorded with its reason; the spec's
other stages still run unless they need its metrics (``stages.NEEDS``), and the other specs go
on.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import queue as queue_mod
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from .. import __version__
from ..errors import LightnormError
from ..spec import Spec, SpecError, dumps, loads
from ..tools import lifetime
from . import stages as st
from .store import LEASE_RENEW_S, WRITE_LOCK, ResultStore, StageRow, utc_now

#: on_event(spec name, stage, status) with status "running", "waiting" (another run holds the
#: stage), "cached", "ok", "failed", "error", "skipped" (a needed stage is not ok) or "done"
#: (the spec's last stage ended)
EventFn = Callable[[str, str, str], None]
#: how often a run waiting for another run's stage asks the store again
WAIT_POLL_S = 0.5


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _describe(exc: BaseException) -> str:
    """One line for the store: the message of a lightnorm error; type, message and place of
    anything else (a bug)."""
    if isinstance(exc, (LightnormError, SpecError)):
        return _one_line(str(exc))
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
    return _one_line(f"{type(exc).__name__}: {exc}{where}")


def _skipped_summary(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason, "finished": None, "duration_s": 0.0,
            "tool_versions": {}, "metrics": None, "inputs": {}}


def run_spec(spec: Spec, opts: st.FlowOptions, store: ResultStore, *,
             collection: str = "flow", preset: bool = False,
             point: Mapping[str, Any] | None = None,
             on_event: EventFn | None = None) -> dict[str, Any]:
    """Run (or read from the store) every stage of ``opts.stages`` for ``spec``.

    Returns the spec's summary (lightnorm.reports.report's input): the stage entries of this
    run, each ``ok``, ``failed``, ``error`` or ``skipped``.
    """
    emit = on_event or (lambda *a: None)
    spec = spec.with_clock(opts.clock_ns)  # the flow's clock is a design parameter
    toml = dumps(spec)
    store.add_member(collection, spec.hash, spec.name, toml, preset, point)
    done: dict[str, StageRow] = {}
    summary: dict[str, Any] = {"spec": spec.name, "spec_hash": spec.hash, "preset": preset,
                               "sweep": None if collection == "flow" else collection,
                               "point": None if point is None else dict(point), "stages": {}}
    for stage in st.planned(opts.stages):
        # a shared stage (the accuracy reference) is recorded under its own name, not the spec's
        shared = st.SHARED.get(stage)
        owner = (shared, shared, "") if shared else (spec.hash, spec.name, toml)
        missing = [d for d in st.NEEDS.get(stage, ()) if d not in done or
                   done[d].status != "ok"]
        if missing:
            summary["stages"][stage] = _skipped_summary(
                f"needs {', '.join(missing)}, which did not succeed or did not run")
            emit(spec.name, stage, "skipped")
            continue
        deps = {d: done[d].metrics or {} for d in st.NEEDS.get(stage, ())}
        started, t0 = utc_now(), time.perf_counter()
        try:
            inputs = st.stage_inputs(stage, spec, opts, deps)
            versions = st.tool_versions(stage)
        except Exception as exc:  # a missing tool (ToolError) or a bug: record, go on
            row = store.record(spec_hash=owner[0], spec_name=owner[1], spec_toml=owner[2],
                               stage=stage, stage_key=f"error:{stage}:{spec.hash}",
                               tool_versions={}, inputs={}, status="error",
                               reason=_describe(exc), metrics=None, started=started,
                               duration_s=time.perf_counter() - t0, version=__version__)
            done[stage] = row
            summary["stages"][stage] = row.to_summary()
            emit(spec.name, stage, "error")
            continue
        key = st.stage_key(stage, spec, inputs, versions)
        row_or_none = _claim(store, key, functools.partial(emit, spec.name, stage, "waiting"))
        if row_or_none is not None:
            done[stage] = row_or_none
            summary["stages"][stage] = row_or_none.to_summary() | {"cached": True}
            emit(spec.name, stage, "cached")
            continue
        emit(spec.name, stage, "running")
        status: str
        reason: str | None
        metrics: dict[str, Any] | None
        with _holding(store, key):
            try:
                status, reason, metrics = st.RUNNERS[stage](spec, opts, deps)
            except Exception as exc:  # a tool error, or a bug: record it, go on
                status, reason, metrics = "error", _describe(exc), None
            row = store.record(spec_hash=owner[0], spec_name=owner[1], spec_toml=owner[2],
                               stage=stage, stage_key=key, tool_versions=versions,
                               inputs=inputs, status=status, reason=reason, metrics=metrics,
                               started=started, duration_s=time.perf_counter() - t0,
                               version=__version__)
        done[stage] = row
        summary["stages"][stage] = row.to_summary() | {"cached": False}
        emit(spec.name, stage, row.status)
    emit(spec.name, "", "done")
    return summary


def _claim(store: ResultStore, key: str, on_wait: Callable[[], None]) -> StageRow | None:
    """The recorded verdict of ``key`` (waiting while another live run computes it), or None
    once this process holds the claim and must run the stage."""
    told = False
    while True:
        state, got = store.claim(key)
        if state == "verdict":
            assert isinstance(got, StageRow)
            return got
        if state == "claimed":
            return None
        if not told:
            on_wait()
            told = True
        time.sleep(WAIT_POLL_S)


@contextmanager
def _holding(store: ResultStore, key: str) -> Iterator[None]:
    """Keep the claim on ``key`` fresh while the stage runs; drop it at the end."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LEASE_RENEW_S):
            try:
                store.renew(key)
            except LightnormError:
                return  # the claim goes stale; at worst another run computes the stage too

    renewer = threading.Thread(target=renew, name="lightnorm-lease", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        store.release(key)


# --- several specs on a process pool ----------------------------------------------------------
#: the flow's event queue in a pool worker (set by :func:`_init_worker`; None elsewhere)
_EVENTS: Any = None
#: how long a worker whose parent died waits for a row being written before it exits anyway
_EXIT_GRACE_S = 30.0


def _stop(code: int) -> None:
    """End this pool worker now: let a store write finish, kill what the worker started
    (tools, cocotb's simulator), exit quietly. The stages already recorded stay; the one
    running is rerun by the next flow."""
    WRITE_LOCK.acquire(timeout=_EXIT_GRACE_S)
    lifetime.kill_descendants()
    os._exit(code)


def _on_interrupt(signum: int, frame: Any) -> None:
    # Ctrl-C reaches the whole process group: the flow's process reports it (exit 130); a
    # worker stops without a traceback, from a thread so that a row being written completes
    threading.Thread(target=_stop, args=(130,), daemon=True).start()


def _init_worker(events: Any, parent: int) -> None:
    global _EVENTS
    _EVENTS = events
    lifetime.become_subreaper()
    # a flow started where Ctrl-C is ignored (a background job of a shell without job control
    # passes SIGINT ignored on) ignores it in every process, its workers too: a worker alone
    # stopping on it would break the pool under a process that goes on
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_interrupt)
    lifetime.watch_parent(parent, functools.partial(_stop, 70))


def _worker(spec_toml: str, opts: dict[str, Any], store_dir: str, collection: str,
            preset: bool, point: dict[str, Any] | None) -> dict[str, Any]:
    spec = loads(spec_toml)
    events = _EVENTS

    def emit(name: str, stage: str, status: str) -> None:
        if events is not None:
            events.put((name, stage, status))

    # the command checked the whole store before it started the workers
    return run_spec(spec, st.FlowOptions.from_dict(opts), ResultStore(store_dir, check=False),
                    collection=collection, preset=preset, point=point, on_event=emit)


class Job:
    """One spec to run: the spec, its collection, whether it is a preset, its sweep point."""

    def __init__(self, spec: Spec, collection: str = "flow", preset: bool = False,
                 point: Mapping[str, Any] | None = None) -> None:
        self.spec, self.collection, self.preset = spec, collection, preset
        self.point = None if point is None else dict(point)


def run_specs(jobs: Sequence[Job], opts: st.FlowOptions, store: ResultStore, workers: int = 1,
              on_event: EventFn | None = None) -> list[dict[str, Any]]:
    """Run ``jobs`` on a pool of ``workers`` processes (at most one per job), or in this
    process when ``workers`` is 0.

    Returns the summaries in the order of ``jobs``. Ctrl-C stops the pool; what finished is in
    the store, and running the same command again resumes. The workers exit on their own when
    this process dies (module docstring).
    """
    if workers <= 0 or not jobs:
        return [run_spec(j.spec, opts, store, collection=j.collection, preset=j.preset,
                         point=j.point, on_event=on_event) for j in jobs]
    ctx = multiprocessing.get_context("spawn")  # numba and threads do not survive fork
    events = ctx.Queue() if on_event is not None else None
    stop = threading.Event()

    def drain() -> None:
        while events is not None and on_event is not None:
            try:
                item = events.get(timeout=0.1)
            except queue_mod.Empty:
                if stop.is_set():
                    return
                continue
            except (OSError, EOFError, ValueError):  # the queue was closed
                return
            on_event(*item)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    results: dict[int, dict[str, Any]] = {}
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                               initializer=_init_worker, initargs=(events, os.getpid()))
    try:
        futs: dict[Future[dict[str, Any]], int] = {
            pool.submit(_worker, dumps(j.spec), opts.to_dict(), str(store.directory),
                        j.collection, j.preset, j.point): i
            for i, j in enumerate(jobs)}
        pending = set(futs)
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in finished:
                results[futs[f]] = f.result()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        stop.set()
        reader.join(timeout=5)
        if events is not None:
            events.close()
            events.join_thread()
    return [results[i] for i in range(len(jobs))]


def spec_failed(summary: Mapping[str, Any]) -> bool:
    """True when a stage of the spec failed or errored (the flow exits 1)."""
    return any(s.get("status") in ("failed", "error") for s in summary["stages"].values())


def run_on_dask(jobs: Sequence[Job], opts: st.FlowOptions, store: ResultStore, address: str,
                on_done: Callable[[dict[str, Any]], None] | None = None,
                timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Run ``jobs`` on the Dask cluster at ``address`` (``tcp://HOST:PORT``).

    Each job is one task (``pure=False``: always run, never deduplicated by Dask). The workers
    write to the store themselves, so its directory must be reachable from them (docs/flow.md).
    A worker lost mid-task has the task re-run by the scheduler on another worker (Dask's
    ``allowed-failures``); the lost attempt recorded only the stages it finished.
    """
    from ..errors import ToolError

    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise ToolError("--scheduler needs dask.distributed (pip install 'dask[distributed]')"
                        ) from exc
    try:
        client = Client(address, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError) as exc:
        raise ToolError(f"--scheduler {address}: cannot connect to a Dask scheduler ({exc})"
                        ) from exc
    results: dict[int, dict[str, Any]] = {}
    try:
        futs = [client.submit(_worker, dumps(j.spec), opts.to_dict(), str(store.directory),
                              j.collection, j.preset, j.point, pure=False,
                              key=f"lightnorm-{j.spec.name}-{j.spec.hash[:12]}-{time.time_ns()}")
                for j in jobs]
        index = {f.key: i for i, f in enumerate(futs)}
        for fut in as_completed(futs):
            res = fut.result()
            results[index[fut.key]] = res
            if on_done is not None:
                on_done(res)
    finally:
        client.close()
    return [results[i] for i in range(len(jobs))]
