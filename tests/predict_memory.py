"""Peak memory of `facefactors predict` on large photos (run as a script, or from the tests).

    python tests/predict_memory.py --count 6 --width 8000 --height 6000

writes that many JPEGs (a smooth background with an enlarged Grace Hopper portrait), runs
the real CLI in a child process with the default ``--batch 16`` and prints the child's peak
resident memory (``ru_maxrss``) and the rows it wrote, as JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def make_photos(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """``count`` JPEGs of ``width`` x ``height`` with one large face each."""
    import cv2
    import numpy as np

    from facefactors.faces import samples

    face = samples.grace_hopper()
    side = min(width, height) // 2
    face = cv2.resize(face, (side * face.shape[1] // face.shape[0], side))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width * 200, yy / height * 200, np.full_like(xx, 120)], -1).astype(
        np.uint8
    )
    paths = []
    for k in range(count):
        im = base.copy()
        y0, x0 = height // 4, (width - face.shape[1]) * (k + 1) // (count + 1)
        im[y0 : y0 + face.shape[0], x0 : x0 + face.shape[1]] = face
        path = folder / f"big_{k}.jpg"
        cv2.imwrite(str(path), cv2.cvtColor(im, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        paths.append(path)
    return paths


def measure(count: int, width: int, height: int, weights: str, batch: int = 16) -> dict:
    """Write the photos, run predict in a child process; its peak RSS and rows."""
    from inference_helpers import save_tiny_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "photos").mkdir()
        make_photos(tmp / "photos", count, width, height)
        ckpt = save_tiny_checkpoint(tmp / "model.pt")
        out = tmp / "r.csv"
        code = "import sys; from facefactors import cli; sys.exit(cli.main(sys.argv[1:]))"
        argv = ["predict", str(tmp / "photos"), "--checkpoint", str(ckpt), "--out", str(out)]
        argv += ["--weights", weights, "--batch", str(batch)]
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code, *argv],
            env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t0
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        rows = out.read_text().splitlines()[1:] if out.is_file() else []
        return {
            "images": count,
            "size": f"{width}x{height}",
            "batch": batch,
            "returncode": proc.returncode,
            "stderr": proc.stderr.strip()[-500:],
            "peak_rss_mib": round(peak_kib / 1024),
            "seconds": round(seconds, 1),
            "rows": rows,
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--count", type=int, default=6)
    p.add_argument("--width", type=int, default=8000)
    p.add_argument("--height", type=int, default=6000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--weights", default=None, help="MTCNN weight folder (default: the cache)")
    a = p.parse_args()
    from facefactors.faces.weights import require_mtcnn_weights

    weights = a.weights or str(Path(require_mtcnn_weights(None)["pnet"]).parent)
    result = measure(a.count, a.width, a.height, weights, a.batch)
    result["rows"] = len(result["rows"])
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
