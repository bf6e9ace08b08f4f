"""``facefactors synth``: render a synthetic split in the RAF-DB layout, plus contact sheets."""

from __future__ import annotations

import argparse
import json
import sys

from facefactors.commands.common import add_overrides_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="render procedural faces with exact factors (RAF-DB layout + factors.npz)",
        description=(
            "Render a split of procedural 3D faces into DIR in the RAF-DB basic layout "
            "(Image/aligned/*_aligned.jpg, EmoLabel/list_patition_label.txt with codes 1..7; "
            "contempt is not drawn), with every factor in DIR/factors.npz and contact sheets "
            "in DIR/contact_sheets/."
        ),
    )
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--split", default="train", help="train or test (disjoint identities)")
    p.add_argument("--identities", type=int, default=100, help="number of identities")
    p.add_argument("--per-identity", type=int, default=8, help="images per identity")
    p.add_argument("--size", type=int, default=112, help="image size in pixels (>= 32)")
    p.add_argument("--seed", type=int, default=0, help="global seed")
    p.add_argument("--batch-size", type=int, default=32, help="faces rendered at once")
    add_overrides_option(p, "expression_intensity=[0.3,0.7]")
    p.add_argument("--no-contact-sheets", action="store_true", help="skip the contact sheets")
    p.add_argument(
        "--layout", choices=("rafdb", "folder"), default="rafdb",
        help="rafdb (default), or folder: plain PNGs in numbered class folders named by person, "
        "OUT/<k> - <Class>/S<identity>_<n>.png, with no factors or contact sheets",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facefactors.config import apply_overrides, from_dict
    from facefactors.errors import FaceFactorsError
    from facefactors.synth.dataset import check_positive, check_size
    from facefactors.synth.export import export_folder, export_rafdb
    from facefactors.synth.sampling import SPLITS, SynthConfig

    if args.split not in SPLITS:
        raise FaceFactorsError(f"Unknown split '{args.split}'; choose train or test.")
    for flag, value in (
        ("--identities", args.identities),
        ("--per-identity", args.per_identity),
        ("--batch-size", args.batch_size),
    ):
        check_positive(flag, value)
    check_size(args.size, "--size")
    config = from_dict(SynthConfig, apply_overrides({}, args.overrides))
    if args.layout == "folder":
        summary = export_folder(
            args.out, args.split, args.identities, args.per_identity, args.size, args.seed,
            config if args.overrides else None, args.batch_size,
        )  # fmt: skip
        json.dump(summary, sys.stdout)
        sys.stdout.write("\n")
        return 0
    summary = export_rafdb(
        args.out,
        split=args.split,
        identities=args.identities,
        per_identity=args.per_identity,
        size=args.size,
        seed=args.seed,
        config=config,
        batch_size=args.batch_size,
        contact_sheets=not args.no_contact_sheets,
    )
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0
