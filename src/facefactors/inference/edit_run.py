"""What ``facefactors edit <edit>`` runs: load, edit, write the file ``--out`` names.

Images are written by their suffix (PNG, JPEG, BMP, TIFF, WebP), meshes as OBJ or
PLY, videos as MP4/MOV/MKV (mp4v) or AVI (MJPG), always atomically: a failed run
leaves nothing at ``--out``. ``--crop-out`` also writes the edited aligned crop.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from facefactors.errors import DataError
from facefactors.inference.editor import EditResult, FaceEditor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def check_image_out(path: str | os.PathLike) -> Path:
    """``path`` if its suffix names an image format we write (DataError otherwise)."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(f"Output {path} must end in one of {', '.join(IMAGE_SUFFIXES)}.")
    return path


def write_image(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Encode an (H, W, 3) uint8 RGB image by the suffix and write it atomically."""
    import cv2

    from facefactors.checkpoint import atomic_write_bytes

    path = check_image_out(path)
    ok, buf = cv2.imencode(path.suffix.lower(), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError(f"Output {path} could not be encoded.")
    atomic_write_bytes(path, buf.tobytes())
    return path


def strip(images: list[np.ndarray]) -> np.ndarray:
    """Equal (h, w, 3) images side by side: (h, n·w, 3)."""
    return np.concatenate(images, axis=1)


def _editor(args: argparse.Namespace) -> FaceEditor:
    return FaceEditor.from_checkpoint(
        args.checkpoint, device=args.device, weights_dir=args.weights, min_face_size=args.min_face
    )


def _aligned(args: argparse.Namespace) -> bool | None:
    return True if args.aligned else None


def _write_result(args: argparse.Namespace, res: EditResult) -> list[Path]:
    paths = [write_image(args.out, res.image)]
    if args.crop_out:
        paths.append(write_image(args.crop_out, res.crop))
    return paths


def run_swap(args: argparse.Namespace) -> list[Path]:
    """``edit expression|pose|relight --target A --driver B``."""
    check_image_out(args.out)
    method = {"expression": "transfer_expression", "pose": "transfer_pose", "relight": "relight"}
    edit = getattr(_editor(args), method[args.edit])
    return _write_result(args, edit(args.target, args.driver, aligned=_aligned(args)))


def run_interpolate(args: argparse.Namespace) -> list[Path]:
    """``edit interpolate --factor F --a A --b B --steps N``: a strip of the decoded crops."""
    check_image_out(args.out)
    ed = _editor(args)
    a = _aligned(args)
    ca, cb = ed.encode_one(args.a, "first face", a), ed.encode_one(args.b, "second face", a)
    walk = ed.interpolate_codes(ca, cb, args.factor, args.steps)
    crops, results = ed.render(walk, paste=bool(args.photos))
    paths = [write_image(args.out, strip(list(crops)))]
    if args.photos:
        paths.append(write_image(args.photos, strip([r.image for r in results])))
    return paths


def run_mesh(args: argparse.Namespace) -> list[Path]:
    """``edit mesh IMAGE --out face.obj|face.ply``."""
    from facefactors.inference.mesh import MESH_SUFFIXES

    if Path(args.out).suffix.lower() not in MESH_SUFFIXES:
        raise DataError(f"Mesh output {args.out} must end in .obj or .ply.")
    return [_editor(args).reconstruct_3d(args.image, _aligned(args)).save(args.out)]


def run_neutralize(args: argparse.Namespace) -> list[Path]:
    """``edit neutralize IMAGE --checkpoint IPD_RUN``: G(f_id + f_pose) pasted back."""
    from facefactors.inference.neutralize import Neutralizer

    check_image_out(args.out)
    nz = Neutralizer.from_checkpoint(
        args.checkpoint, device=args.device, weights_dir=args.weights, min_face_size=args.min_face
    )
    return _write_result(args, nz.neutralize(args.image, _aligned(args)))


def run_animate(args: argparse.Namespace) -> list[Path]:
    """``edit animate --template T --video V --out OUT.mp4 [--side-by-side]``."""
    import sys

    from facefactors.inference.animate import animate_to_file

    stats = animate_to_file(
        _editor(args), args.template, args.video, args.out, side_by_side=args.side_by_side,
        aligned=_aligned(args), progress=not args.quiet,
    )  # fmt: skip
    print(
        f"facefactors edit animate: {stats.frames} frames at {stats.fps:.1f} frames/s "
        f"({stats.missed} without a face kept the previous expression).",
        file=sys.stderr,
    )
    return [Path(args.out)]


RUNNERS = {
    "expression": run_swap,
    "pose": run_swap,
    "relight": run_swap,
    "interpolate": run_interpolate,
    "mesh": run_mesh,
    "neutralize": run_neutralize,
    "animate": run_animate,
}
