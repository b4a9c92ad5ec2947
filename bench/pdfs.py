"""Certificate PDFs: download through the service, signed-PDF throughput of a process pool, independent checks."""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from certificate_service.core.config import Settings
from certificate_service.db import begin_write, create_db_engine, create_session_factory
from certificate_service.enterprises import register_enterprise

__all__ = ["download_pdfs", "independent_verify", "pdf_pool_throughput", "register_enterprises"]


def register_enterprises(data_dir: Path, usccs: dict[str, str]) -> dict[str, str]:
    """Register each ``uscc -> name`` in the service's database; ``uscc -> API token``."""
    settings = Settings(DATA_DIR=data_dir)
    engine = create_db_engine(settings.DATABASE_URL)
    tokens = {}
    try:
        with create_session_factory(engine)() as session:
            for uscc, name in usccs.items():
                begin_write(session)  # a writer from the start: the running service writes too
                tokens[uscc] = register_enterprise(session=session, uscc=uscc, name=name)
    finally:
        engine.dispose()
    return tokens


def download_pdfs(
    service_url: str, wanted: list[tuple[str, str]], tokens: dict[str, str], *, concurrency: int = 2
) -> dict[str, Any]:
    """Download ``(certificate_id, uscc)`` PDFs (each rendered and signed by the service on first download)."""

    def fetch(item: tuple[str, str]) -> tuple[bytes, dict[str, Any], float]:
        certificate_id, uscc = item
        headers = {"Authorization": f"Bearer {tokens[uscc]}"}
        with httpx.Client(base_url=service_url, headers=headers, timeout=120) as client:
            started = time.perf_counter()
            response = client.get(f"/api/v1/certificates/{certificate_id}/pdf")
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            payload = client.get(f"/api/v1/certificates/{certificate_id}/payload")
            payload.raise_for_status()
        return response.content, payload.json(), elapsed

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as threads:
        results = list(threads.map(fetch, wanted))
    elapsed = time.perf_counter() - started
    return {
        "pdfs": [pdf for pdf, _, _ in results],
        "payloads": [payload for _, payload, _ in results],
        "download_ms_median": statistics.median(ms for _, _, ms in results) * 1000,
        "seconds": elapsed,
    }


def _pool_worker(
    data_dir: str, work: list[tuple[dict[str, Any], str]], barrier: Any, results: Any
) -> None:
    """Render + sign ``work`` after a common start (warm-up first: fonts, PKI, imports)."""
    from certificate_service.pdf import register_fonts, render_certificate, sign_certificate
    from certificate_service.pki import IssuerPKI

    pki = IssuerPKI.load_or_create(Path(data_dir))
    register_fonts()
    for payload, url in work[:3]:
        sign_certificate(render_certificate(payload, url), pki)
    barrier.wait()
    started = time.perf_counter()
    sizes = []
    for payload, url in work:
        sizes.append(len(sign_certificate(render_certificate(payload, url), pki)))
    results.put((started, time.perf_counter(), len(work), sizes))


def pdf_pool_throughput(
    data_dir: Path, payloads: list[dict[str, Any]], public_url: str, *, processes: int = 2, per_process: int = 150
) -> dict[str, Any]:
    """Signed PDFs/s of ``processes`` workers over `render_certificate` + `sign_certificate` (real payloads).

    Every worker warms up, then all start together (a barrier); the rate is all PDFs over the span from the
    first start to the last finish (perf_counter is system-wide on Linux).
    """
    work = [
        (payloads[i % len(payloads)], f"{public_url}/verify/{payloads[i % len(payloads)]['certificate_id']}")
        for i in range(per_process)
    ]
    ctx = mp.get_context("spawn")  # a clean interpreter per worker (this process runs threads)
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_pool_worker, args=(str(data_dir), work, barrier, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    spans = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    first, last = min(s[0] for s in spans), max(s[1] for s in spans)
    count = sum(s[2] for s in spans)
    sizes = [size for s in spans for size in s[3]]
    return {
        "processes": processes,
        "pdfs": count,
        "seconds": last - first,
        "pdf_per_s": count / (last - first),
        "pdf_bytes_median": statistics.median(sizes),
    }


def independent_verify(pdfs: list[bytes], rpc_url: str, ca_pem: bytes) -> dict[str, Any]:
    """`trace_sdk.verifier.checks.verify_pdf` of each PDF in this (already started) interpreter."""
    from trace_sdk.verifier.checks import verify_pdf

    times = []
    statuses: dict[str, int] = {}
    for pdf in pdfs:
        started = time.perf_counter()
        result = verify_pdf(pdf, rpc_url=rpc_url, ca_pem=ca_pem)
        times.append((time.perf_counter() - started) * 1000)
        status = str(result.status)
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "pdfs": len(pdfs),
        "median_ms": statistics.median(times),
        "first_ms": times[0],
        "p95_ms": sorted(times)[max(0, int(len(times) * 0.95) - 1)],
        "statuses": statuses,
    }
