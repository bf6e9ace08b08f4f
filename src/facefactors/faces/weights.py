"""MTCNN weight files: where they live, how they are fetched and verified.

The standard MTCNN weights (P-Net, R-Net, O-Net, ported from the original Caffe
model) ship inside the ``facenet-pytorch`` 2.6.0 wheel on PyPI. That package
pins an old torch and cannot be installed beside ours, so
``facefactors weights fetch mtcnn`` runs ``pip download --no-deps`` on the wheel,
reads the three ``.pt`` files out of the zip, checks their SHA-256 and stores
them in ``$FACEFACTORS_HOME/weights/mtcnn`` (default ``~/.cache/facefactors``).
Nothing here downloads anything unless :func:`fetch_mtcnn` is called.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from facefactors.errors import FaceFactorsError

FACENET_PYTORCH_VERSION = "2.6.0"
_WHEEL_DATA_DIR = "facenet_pytorch/data"


class WeightsError(FaceFactorsError):
    """Missing, corrupt or unobtainable pretrained weights."""


@dataclass(frozen=True)
class WeightFile:
    """Expected size and SHA-256 of one weight file."""

    name: str
    size: int
    sha256: str


# Digests computed from facenet_pytorch-2.6.0-py3-none-any.whl (PyPI) with sha256sum
# on the files extracted from facenet_pytorch/data/; sizes as listed in the wheel.
MTCNN_FILES: tuple[WeightFile, ...] = (
    WeightFile(
        "pnet.pt", 28_570, "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f"
    ),
    WeightFile(
        "rnet.pt", 403_147, "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86"
    ),
    WeightFile(
        "onet.pt", 1_559_269, "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"
    ),
)

FETCH_HINT = "run `facefactors weights fetch mtcnn` or pass `--weights DIR`"


def facefactors_home() -> Path:
    """``$FACEFACTORS_HOME`` if set, else ``~/.cache/facefactors``."""
    env = os.environ.get("FACEFACTORS_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facefactors"


def mtcnn_weights_dir(weights_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding ``pnet.pt``, ``rnet.pt`` and ``onet.pt``.

    Args:
        weights_dir: an explicit folder (the ``--weights DIR`` option); ``None``
            means the cache folder ``$FACEFACTORS_HOME/weights/mtcnn``.
    """
    if weights_dir is not None:
        return Path(weights_dir).expanduser()
    return facefactors_home() / "weights" / "mtcnn"


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def check_weight(path: Path, spec: WeightFile) -> str:
    """Status of one weight file: ``"ok"``, ``"missing"``, ``"wrong size"`` or ``"wrong sha256"``."""
    if not path.is_file():
        return "missing"
    if path.stat().st_size != spec.size:
        return "wrong size"
    if sha256_bytes(path.read_bytes()) != spec.sha256:
        return "wrong sha256"
    return "ok"


def weights_status(weights_dir: str | os.PathLike | None = None) -> list[tuple[str, Path, str]]:
    """``(name, path, status)`` for each MTCNN weight file (see :func:`check_weight`)."""
    folder = mtcnn_weights_dir(weights_dir)
    return [(f.name, folder / f.name, check_weight(folder / f.name, f)) for f in MTCNN_FILES]


def require_mtcnn_weights(weights_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Paths of the three verified MTCNN weight files.

    Returns:
        ``{"pnet": path, "rnet": path, "onet": path}``.

    Raises:
        WeightsError: a file is missing or does not match the expected digest.
    """
    out: dict[str, Path] = {}
    for name, path, status in weights_status(weights_dir):
        if status == "missing":
            raise WeightsError(f"MTCNN weight file {path} is missing; {FETCH_HINT}.")
        if status != "ok":
            raise WeightsError(
                f"MTCNN weight file {path} has the {status} for facenet-pytorch "
                f"{FACENET_PYTORCH_VERSION}; {FETCH_HINT} with the original files."
            )
        out[name.removesuffix(".pt")] = path
    return out


def extract_mtcnn_from_wheel(wheel: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Copy the three MTCNN weight files out of a facenet-pytorch wheel, verified.

    Each file is checked against :data:`MTCNN_FILES` before it is written, and
    written atomically, so ``dest`` never holds a partial or unverified file.

    Args:
        wheel: path of ``facenet_pytorch-2.6.0-py3-none-any.whl``.
        dest: destination folder (created if needed).

    Returns:
        The written paths.

    Raises:
        WeightsError: the wheel is unreadable, lacks a file, or a digest differs.
    """
    from facefactors.checkpoint import atomic_write_bytes

    wheel = Path(wheel)
    dest = Path(dest)
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"Wheel {wheel} could not be opened as a zip file ({exc}).") from None
    written = []
    with zf:
        names = set(zf.namelist())
        for spec in MTCNN_FILES:
            member = f"{_WHEEL_DATA_DIR}/{spec.name}"
            if member not in names:
                raise WeightsError(f"Wheel {wheel} has no {member}.")
            data = zf.read(member)
            digest = sha256_bytes(data)
            if digest != spec.sha256 or len(data) != spec.size:
                raise WeightsError(
                    f"{member} in {wheel} has SHA-256 {digest} ({len(data)} bytes) instead of "
                    f"{spec.sha256} ({spec.size} bytes)."
                )
            atomic_write_bytes(dest / spec.name, data)
            written.append(dest / spec.name)
    return written


def download_facenet_wheel(dest: str | os.PathLike, timeout: float = 300.0) -> Path:
    """``pip download --no-deps facenet-pytorch==2.6.0`` into ``dest``; returns the wheel.

    Uses the pip of the running interpreter, so the user's pip configuration
    (index URL, proxy) applies.

    Raises:
        WeightsError: pip failed (no network, no registry) or produced no wheel.
    """
    dest = Path(dest)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        f"facenet-pytorch=={FACENET_PYTORCH_VERSION}",
        "-d",
        str(dest),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise WeightsError(
            f"pip download of facenet-pytorch {FACENET_PYTORCH_VERSION} took more than "
            f"{timeout:.0f} s; check the network or pass `--wheel FILE`."
        ) from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        raise WeightsError(
            f"pip could not download facenet-pytorch {FACENET_PYTORCH_VERSION} ({reason}); "
            f"check the network or pass `--wheel FILE`."
        )
    wheels = sorted(dest.glob("facenet_pytorch-*.whl"))
    if not wheels:
        raise WeightsError(f"pip download left no facenet_pytorch wheel in {dest}.")
    return wheels[0]


def fetch_mtcnn(
    weights_dir: str | os.PathLike | None = None, wheel: str | os.PathLike | None = None
) -> Path:
    """Obtain the MTCNN weights into ``weights_dir`` (default: the cache folder).

    Args:
        weights_dir: destination folder; ``None`` means :func:`mtcnn_weights_dir`.
        wheel: an already downloaded facenet-pytorch wheel (offline use); when
            ``None`` it is downloaded with pip into a temporary folder.

    Returns:
        The folder now holding the verified files.
    """
    dest = mtcnn_weights_dir(weights_dir)
    if wheel is not None:
        extract_mtcnn_from_wheel(wheel, dest)
        return dest
    with tempfile.TemporaryDirectory(prefix="facefactors-wheel-") as tmp:
        extract_mtcnn_from_wheel(download_facenet_wheel(tmp), dest)
    return dest
