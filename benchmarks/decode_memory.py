"""Peak memory of the decompression attack: a 143 KB PNG of 7000x7000 px sent for face detection (issue 11 #11).

    python benchmarks/decode_memory.py [--concurrent 4] [--json]

Each configuration runs in a fresh process that first loads the face models and detects a face on a small photo
(so model memory is not counted), then resets the kernel's peak-RSS counter (``/proc/self/clear_refs``) and runs
``--concurrent`` detections of the bomb at the same time, in threads, as concurrent requests would. Reported: the
rise of the peak resident set size over the warmed-up baseline, and the wall time.

* ``before``: the old path — full-resolution decode, detection on 7000x7000, no bound on concurrent decodes
  (``load_image`` without ``reduce_to`` and an unlimited decode budget, then ``FaceEngine.detect``);
* ``after``: what the API and enrolment do now — decode reduced to ``decode_reduce_pixels`` (24 MP by default),
  detection on the reduced picture with coordinates mapped back (``detect_loaded``), and the default decode budget
  (100 MP in flight per process).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

BOMB_SIDE = 7000


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A genuine single-colour RGB PNG: about 143 KB on disk, 49 MP (147 MB as RGB) once decoded."""
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(b"\x00" + b"\x5a\x78\x96" * side) for _ in range(side)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(mode: str, concurrent: int) -> dict[str, object]:
    """One measurement in this (fresh) process."""
    from faceleads.config import Settings
    from faceleads.vision.engine import FaceEngine
    from faceleads.vision.imaging import load_image
    from faceleads.vision.models import default_model_dir

    settings = Settings(ort_threads=1, decode_budget_pixels=10**12 if mode == "before" else 100_000_000)
    engine = FaceEngine(settings)
    engine.detect_loaded(load_image(default_model_dir() / "players.jpg", settings), embed=True)  # warm-up
    data = bomb_png()
    baseline = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS

    def one() -> None:
        if mode == "before":
            engine.detect(load_image(data, settings).pixels)
        else:
            engine.detect_loaded(load_image(data, settings, reduce_to=settings.decode_reduce_pixels))

    started = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(concurrent)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    peak = _status("VmHWM")
    return {
        "mode": mode,
        "concurrent": concurrent,
        "png_bytes": len(data),
        "peak_rss_rise_mb": round((peak - baseline) / 2**20, 1),
        "seconds": round(elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrent", type=int, default=4, help="simultaneous requests in the second run")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    rows = []
    for concurrent in (1, args.concurrent):
        for mode in ("before", "after"):
            command = [sys.executable, __file__, "--child", mode, str(concurrent)]
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps({"bomb": f"{BOMB_SIDE}x{BOMB_SIDE} PNG", "runs": rows}, indent=2))
        return
    print(f"{BOMB_SIDE}x{BOMB_SIDE} PNG of {rows[0]['png_bytes'] / 1024:.0f} KB, face detection")
    print(f"{'path':<8} {'concurrent':>10} {'peak RSS rise':>14} {'time':>8}")
    for r in rows:
        print(f"{r['mode']:<8} {r['concurrent']:>10} {r['peak_rss_rise_mb']:>11} MB {r['seconds']:>7}s")


if __name__ == "__main__":
    main()
