"""Certificate PDF throughput: render + PAdES-sign, one process and a pool of processes.

    .venv/bin/python bench/pdf_bench.py [--count 400] [--processes 2]

Prints ms per render and per sign (medians, one process), signed PDFs/s for one process and for the pool
(every worker warmed up first, then timed together from a common start), and the median signed PDF size.
Payloads come from ../shared/data/sample-records.jsonl with made-up chain evidence.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from certificate_service.pdf import register_fonts, render_certificate, sign_certificate  # noqa: E402
from certificate_service.pki import IssuerPKI  # noqa: E402

SAMPLES = REPO_ROOT.parent / "shared" / "data" / "sample-records.jsonl"


def _hex32() -> str:
    return "0x" + secrets.token_hex(32)


def _leaf_paths(value: Any, prefix: str = "") -> list[str]:
    """Dotted leaf paths (array items by index), one salt each as in a real payload."""
    if isinstance(value, dict) and value:
        return [p for key, item in value.items() for p in _leaf_paths(item, f"{prefix}.{key}" if prefix else key)]
    if isinstance(value, list) and value:
        return [p for index, item in enumerate(value) for p in _leaf_paths(item, f"{prefix}.{index}")]
    return [prefix]


def make_payloads(count: int) -> list[tuple[dict[str, Any], str]]:
    """``count`` (payload, verify URL) pairs cycling over the sample records."""
    records = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for n in range(count):
        record = dict(records[n % len(records)])
        contact = record.pop("contact", None) or {}
        certificate_id = secrets.token_hex(10).upper()
        payload = {
            "type": "tracechain-certificate/v1",
            "certificate_id": certificate_id,
            "issued_at": "2026-03-02T10:00:00Z",
            "record": record,
            "salts": {path: _hex32() for path in _leaf_paths(record)},
            "hidden_fields": {f"contact.{key}": _hex32() for key in contact},
            "record_hash": _hex32(),
            "merkle": {"leaf": _hex32(), "root": _hex32(), "proof": [_hex32() for _ in range(8)]},
            "anchor": {
                "tx_hash": _hex32(),
                "block_number": 1000 + n,
                "block_time": "2026-03-02T09:59:58Z",
                "chain_id": 31337,
                "contracts": {"ConsortiumRegistry": "0x" + "1" * 40, "TraceAnchor": "0x" + "2" * 40},
                "agency": {"name": "上海海关", "code": "SHCUSTOMS", "address": "0x" + "3" * 40},
            },
            "issuer": {
                "name": "上海市大数据中心",
                "code": "SHBDC",
                "address": "0x" + "4" * 40,
                "certificate_fingerprint_sha256": secrets.token_hex(32),
            },
            "certificate_hash": _hex32(),
        }
        out.append((payload, f"https://trace.shanghai.gov.cn/verify/{certificate_id}"))
    return out


def _warm_up(pki: IssuerPKI, work: list[tuple[dict[str, Any], str]]) -> None:
    register_fonts()
    for payload, url in work[:5]:
        sign_certificate(render_certificate(payload, url), pki)


def single_process(pki: IssuerPKI, work: list[tuple[dict[str, Any], str]]) -> dict[str, float]:
    _warm_up(pki, work)
    render_ms, sign_ms, sizes = [], [], []
    start, cpu_start = time.perf_counter(), time.process_time()
    for payload, url in work:
        t0 = time.perf_counter()
        pdf = render_certificate(payload, url)
        t1 = time.perf_counter()
        signed = sign_certificate(pdf, pki)
        t2 = time.perf_counter()
        render_ms.append((t1 - t0) * 1000)
        sign_ms.append((t2 - t1) * 1000)
        sizes.append(len(signed))
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return {
        "cpu_ms": cpu * 1000 / len(work),
        "render_ms": statistics.median(render_ms),
        "sign_ms": statistics.median(sign_ms),
        "per_s": len(work) / elapsed,
        "median_bytes": statistics.median(sizes),
    }


def _worker(data_dir: str, count: int, barrier: Any, results: Any) -> None:
    pki = IssuerPKI.load_or_create(Path(data_dir))
    work = make_payloads(count)
    _warm_up(pki, work)
    barrier.wait()
    start = time.perf_counter()
    for payload, url in work:
        sign_certificate(render_certificate(payload, url), pki)
    results.put((start, time.perf_counter(), count))


def process_pool(data_dir: str, count: int, processes: int) -> float:
    """Signed PDFs/s of ``processes`` workers running together (perf_counter is system-wide on Linux)."""
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(data_dir, count, barrier, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    spans = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    first_start = min(start for start, _, _ in spans)
    last_end = max(end for _, end, _ in spans)
    return sum(n for _, _, n in spans) / (last_end - first_start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400, help="PDFs per process")
    parser.add_argument("--processes", type=int, default=2, help="pool size")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pdf-bench-") as data_dir:
        pki = IssuerPKI.load_or_create(Path(data_dir))
        one = single_process(pki, make_payloads(args.count))
        pool = process_pool(data_dir, args.count, args.processes)
    load = os.getloadavg()[0]
    print(f"render             {one['render_ms']:.2f} ms (median)")
    print(f"sign               {one['sign_ms']:.2f} ms (median)")
    print(f"1 process          {one['per_s']:.0f} signed PDFs/s (wall clock)")
    print(f"CPU per PDF        {one['cpu_ms']:.2f} ms -> {1000 / one['cpu_ms']:.0f} PDFs/s per fully available core")
    print(f"{args.processes} processes        {pool:.0f} signed PDFs/s  ({os.cpu_count()} CPUs, load avg {load:.2f})")
    print(f"median PDF         {one['median_bytes'] / 1024:.1f} KiB ({one['median_bytes']:.0f} bytes)")


if __name__ == "__main__":
    main()
