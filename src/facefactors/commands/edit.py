"""``facefactors edit <edit> ...``: face editing with a tensorial run (or IPD-FER's neutral face).

See :mod:`facefactors.inference.edit_run` for what each edit writes.
"""

from __future__ import annotations

import argparse

from facefactors.commands.weights import add_weights_option

_SWAPS = {
    "expression": ("give the target the driver's expression (swap z_exp)", "--driver"),
    "pose": ("turn the target's head to the driver's pose (swap z_p)", "--driver"),
    "relight": ("light the target as the light source is lit (swap z_l)", "--driver"),
}


def _common(p: argparse.ArgumentParser, what: str = "a tensorial run folder") -> None:
    p.add_argument(
        "--checkpoint", required=True, metavar="RUN_OR_FILE",
        help=f"{what}, or its checkpoint file",
    )  # fmt: skip
    p.add_argument(
        "--aligned", action="store_true",
        help="inputs are already aligned crops at the model's size (no MTCNN); a crop of "
        "exactly that size is taken as aligned anyway",
    )  # fmt: skip
    add_weights_option(p)
    p.add_argument("--min-face", type=float, default=20.0, metavar="PX", help="MTCNN smallest face")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")


def _image_out(p: argparse.ArgumentParser, crop: bool = True) -> None:
    p.add_argument(
        "--out", required=True, metavar="FILE",
        help="output image; the format follows the suffix (.png .jpg .bmp .tif .webp)",
    )  # fmt: skip
    if crop:
        p.add_argument(
            "--crop-out", default=None, metavar="FILE", help="also write the edited aligned crop"
        )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "edit",
        help="edit faces with a trained tensorial model: expression, pose, light, 3D mesh, video",
        description="Edit the face in a photo with a trained tensorial run and paste it back "
        "into the photo (blended with the model's face mask). Every output is written "
        "atomically; an input error is one sentence naming the file.",
    )
    edits = p.add_subparsers(dest="edit", metavar="<edit>", required=True)
    for name, (text, _flag) in _SWAPS.items():
        q = edits.add_parser(name, help=text, description=text + ", then paste it back.")
        q.add_argument("--target", required=True, metavar="IMAGE", help="the face to edit")
        role = "light source" if name == "relight" else "driver"
        q.add_argument(
            "--driver", "--source", dest="driver", required=True, metavar="IMAGE",
            help=f"the {role}: the face whose code is taken",
        )  # fmt: skip
        _image_out(q)
        _common(q)
    q = edits.add_parser(
        "interpolate", help="walk one factor from face A to face B: a strip of crops"
    )
    q.add_argument("--factor", required=True, choices=("expression", "identity", "pose", "light"))
    q.add_argument("--a", required=True, metavar="IMAGE", help="the face the walk starts from")
    q.add_argument("--b", required=True, metavar="IMAGE", help="the face whose factor it ends at")
    q.add_argument("--steps", type=int, default=11, help="frames, both ends included (default 11)")
    _image_out(q, crop=False)
    q.add_argument(
        "--photos", default=None, metavar="FILE",
        help="also write a strip of A's whole photo with each step pasted back",
    )  # fmt: skip
    _common(q)
    q = edits.add_parser("mesh", help="a coloured 3D face mesh (OBJ or PLY) from one image")
    q.add_argument("image", metavar="IMAGE")
    q.add_argument("--out", required=True, metavar="FILE", help="face.obj or face.ply")
    _common(q)
    q = edits.add_parser(
        "neutralize", help="IPD-FER's own edit G(f_id + f_pose): the same face, neutral"
    )
    q.add_argument("image", metavar="IMAGE")
    _image_out(q)
    _common(q, "an IPD-FER run folder (ipd or no_pose variant)")
    q = edits.add_parser(
        "animate", help="animate a still face with the expressions of a video (MP4 out)"
    )
    q.add_argument("--template", required=True, metavar="IMAGE", help="the still face")
    q.add_argument("--video", required=True, metavar="VIDEO", help="the driving video")
    q.add_argument("--out", required=True, metavar="FILE", help="OUT.mp4 (.mov .mkv .avi)")
    q.add_argument(
        "--side-by-side", action="store_true", help="the video frame left, the animated face right"
    )
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    _common(q)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from facefactors.inference.edit_run import RUNNERS

    paths = RUNNERS[args.edit](args)
    print(f"wrote {', '.join(str(x) for x in paths)}", file=sys.stderr)
    return 0
