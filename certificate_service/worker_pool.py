"""Pools of worker processes for the service's pure-CPU work (upload checking, PDF rendering and signing).

The service runs threads, so workers come from a fork server. A pool starts in the background the first time
it is asked for and is handed out only once every worker has answered a warm-up task; until then, and after
it broke (the next request starts a new one), callers do the work in-process. Workers exit when the service
process is gone, even when it was killed by a signal and ran no exit handlers.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

__all__ = ["WorkerPool", "usable_cpus"]


def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _process_gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie counts as exited)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] == b"Z"
    except (ProcessLookupError, FileNotFoundError):
        return True
    except (PermissionError, OSError, IndexError):
        return False


def _exit_with(service_pid: int) -> None:
    """Worker initializer: exit when the service process is gone.

    Pool workers hold both ends of their task queue and would otherwise wait for work forever.
    """

    def watch() -> None:
        while not _process_gone(service_pid):
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-service", daemon=True).start()


def _pid() -> int:
    """The default warm-up task: answer with the worker's pid."""
    return os.getpid()


class WorkerPool:
    """A lazily started, bounded pool of fork-server worker processes (none on a single CPU)."""

    def __init__(self, max_workers: int, warm_up: Callable[[], object] = _pid) -> None:
        """Up to ``max_workers`` workers (never more than the usable CPUs); each first runs ``warm_up``."""
        self._max_workers = max_workers
        self._warm_up = warm_up
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._warming: list[Future[object]] = []

    def ready(self) -> ProcessPoolExecutor | None:
        """The pool once it is warm; starts it (in the background) when there is none."""
        with self._lock:
            if self._pool is None:
                workers = min(usable_cpus(), self._max_workers)
                if workers < 2:
                    return None
                self._pool = ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=multiprocessing.get_context("forkserver"),
                    initializer=_exit_with,
                    initargs=(os.getpid(),),
                )
                self._warming = [self._pool.submit(self._warm_up) for _ in range(workers)]
                return None
            if not all(future.done() for future in self._warming):
                return None
            return self._pool

    def drop(self, broken: ProcessPoolExecutor) -> None:
        """Forget a broken pool (the next :meth:`ready` starts a new one)."""
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)
