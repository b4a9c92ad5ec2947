"""Public verification under load: Debian `wrk` (a separate process) against `GET /api/v1/verify/{id}`."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

__all__ = ["run_wrk", "warm_up"]

LUA_SCRIPT = Path(__file__).resolve().parent / "verify.lua"


def warm_up(service_url: str, certificate_ids: list[str], *, concurrency: int = 4) -> dict[str, Any]:
    """Verify every id once (cold: payload built, chain read) so the timed runs see the steady state."""

    def verify(certificate_id: str) -> tuple[float, str]:
        started = time.perf_counter()
        response = client.get(f"/api/v1/verify/{certificate_id}")
        elapsed = (time.perf_counter() - started) * 1000
        return elapsed, str(response.json().get("status")) if response.status_code < 500 else "http-error"

    limits = httpx.Limits(max_connections=concurrency)
    with httpx.Client(base_url=service_url, timeout=60, limits=limits) as client, ThreadPoolExecutor(
        max_workers=concurrency
    ) as threads:
        started = time.perf_counter()
        results = list(threads.map(verify, certificate_ids))
        seconds = time.perf_counter() - started
    statuses: dict[str, int] = {}
    for _, status in results:
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "ids": len(certificate_ids),
        "seconds": seconds,
        "cold_ms_median": statistics.median(ms for ms, _ in results),
        "statuses": statuses,
    }


def run_wrk(
    service_url: str, ids_file: Path, *, connections: int, seconds: int = 10, threads: int | None = None,
    settle_s: int = 2, pace_rps: float | None = None,
) -> dict[str, Any]:
    """One wrk run: requests/s and latency percentiles (ms) at ``connections`` concurrent clients.

    A ``settle_s`` run at the same concurrency goes first and is not counted. wrk corrects its latency
    histogram for coordinated omission (a stall of S ms at a request interval of I ms adds S/I samples), so
    its tail percentiles are the pessimistic ones.
    """
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    threads = threads or min(connections, 2)
    # Paced: each connection pauses connections / pace_rps after every answer, so all of them together send
    # at most pace_rps requests per second (an open-loop-like load at a chosen rate, not the most possible).
    pause = [f"{1000 * connections / pace_rps:.3f}"] if pace_rps else []

    def command(duration: int) -> list[str]:
        return [
            wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
            "-s", str(LUA_SCRIPT), service_url, "--", str(ids_file), *pause,
        ]

    if settle_s > 0:
        subprocess.run(command(settle_s), capture_output=True, text=True, timeout=settle_s + 60, check=True)
    done = subprocess.run(command(seconds), capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    stats = json.loads(line.removeprefix("WRKJSON "))
    duration_s = stats["duration_us"] / 1e6
    errors = sum(stats[k] for k in stats if k.startswith("errors_"))
    return {
        "connections": connections,
        "threads": threads,
        "pace_rps": pace_rps,
        "requests": stats["requests"],
        "errors": errors,
        "rps": stats["requests"] / duration_s,
        "p50_ms": stats["p50_us"] / 1000,
        "p95_ms": stats["p95_us"] / 1000,
        "p99_ms": stats["p99_us"] / 1000,
        "mean_ms": stats["mean_us"] / 1000,
        "max_ms": stats["max_us"] / 1000,
    }
