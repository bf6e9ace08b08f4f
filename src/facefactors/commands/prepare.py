r"""``facefactors prepare DATASET ROOT --out DIR``: detect, align and pose-label a dataset.

See :mod:`facefactors.prepare` for what is written and how runs resume and merge.

facefactors prepare folder faces/ --out prep --subject-regex '^(S\d+)_' \
    --class-map '1 - Joy=happy,2 - Anger=anger'
"""

from __future__ import annotations

import argparse

from facefactors.commands.weights import add_weights_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="detect, align (5 points) and pose-label every image of a dataset",
        description="Detect faces with MTCNN, align them to the ArcFace template, estimate "
        "head pose, and write DIR/images, DIR/annotations.csv, DIR/failures.csv and "
        "DIR/stats.md. Reruns skip finished samples; --shard i/n splits the work, and the "
        "shard that completes the dataset (or --merge) writes the merged annotations.csv.",
    )
    p.add_argument(
        "dataset",
        metavar="DATASET",
        help="loader name: rafdb, ferplus, fer2013, affectnet7, affectnet8, ckplus6, ckplus7, "
        "sfew, folder or csv",
    )
    p.add_argument(
        "root", metavar="ROOT", help="dataset folder (csv: the CSV file); not read with --merge"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--size", type=int, default=112, metavar="PX", help="aligned image side (default 112)"
    )
    p.add_argument("--workers", type=int, default=1, metavar="N", help="processes (default 1)")
    p.add_argument(
        "--shard", default="0/1", metavar="i/n", help="handle samples with index %% n == i"
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="only merge the progress logs in --out (shards from several machines)",
    )
    p.add_argument(
        "--no-detect",
        action="store_true",
        help="pre-aligned crops (RAF-DB aligned, FERPlus, SFEW aligned): resize them; pose "
        "from dataset landmarks or MTCNN on the crop when available, else unknown",
    )
    add_weights_option(p)
    p.add_argument(
        "--limit", type=int, default=None, metavar="N", help="handle at most N samples of the shard"
    )
    p.add_argument(
        "--format", choices=("jpg", "png"), default="jpg", help="image format (jpg: quality 95)"
    )
    p.add_argument(
        "--min-face", type=float, default=20.0, metavar="PX", help="MTCNN smallest face in pixels"
    )
    p.add_argument("--chunk", type=int, default=8, metavar="N", help="samples per work unit")
    p.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dataset loader option, value read as YAML (e.g. --opt aligned=false); repeatable",
    )
    p.add_argument(
        "--class-map", default=None, metavar="MAP",
        help="folder and csv: class names, e.g. '1 - Joy=happy,2 - Grr=anger' (names such as "
        "'1 - Happy' or '01_happy' need no map)",
    )  # fmt: skip
    p.add_argument(
        "--subject-regex", default=None, metavar="REGEX",
        help="folder and csv: the subject id in each file name: group 'subject', else group 1, "
        "else the whole match (e.g. '^(S\\d+)_'); written to annotations.csv for "
        "person-independent folds",
    )  # fmt: skip
    p.add_argument(
        "--subject-column", default=None, metavar="NAME",
        help="csv: the column holding the subject id (default: subject)",
    )  # fmt: skip
    p.set_defaults(func=run)


def parse_options(items: list[str]) -> dict:
    """``["k=v", ...]`` -> ``{k: yaml(v)}``."""
    from facefactors.config import parse_override
    from facefactors.errors import ConfigError

    out = {}
    for text in items:
        keys, value = parse_override(text)
        if len(keys) != 1:
            raise ConfigError(f"Option --opt {text!r} must be key=value with a plain key.")
        out[keys[0]] = value
    return out


def dataset_options(args: argparse.Namespace) -> dict:
    """Loader options: ``--opt`` items plus ``--class-map``/``--subject-*`` when given."""
    from facefactors.errors import ConfigError

    out = parse_options(args.opt)
    flags = {
        "class_map": args.class_map,
        "subject_regex": args.subject_regex,
        "subject_column": args.subject_column,
    }
    for key, value in flags.items():
        if value is None:
            continue
        if key in out:
            raise ConfigError(f"Option {key} is given both as --opt and as its own flag.")
        out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    from facefactors.prepare.outputs import summary_line
    from facefactors.prepare.progress import Shard
    from facefactors.prepare.runner import PrepareOptions, merge_outputs, prepare_dataset

    if args.merge:
        stats = merge_outputs(args.out, dataset=args.dataset)
        print(f"{summary_line(stats)}; wrote {args.out}/annotations.csv")
        return 0
    opts = PrepareOptions(
        dataset=args.dataset,
        root=args.root,
        out=args.out,
        size=args.size,
        workers=args.workers,
        shard=Shard.parse(args.shard),
        detect=not args.no_detect,
        weights_dir=args.weights,
        limit=args.limit,
        image_format=args.format,
        dataset_options=dataset_options(args),
        chunk=args.chunk,
        min_face_size=args.min_face,
    )
    result = prepare_dataset(opts)
    stats = result.stats
    if stats is None:  # a shard whose siblings are not finished: count its own records
        from facefactors.prepare.stats import compute_stats

        stats = compute_stats(result.records, [], args.dataset)
        print(f"shard {opts.shard}: {summary_line(stats)}")
    else:
        print(f"{summary_line(stats)}; wrote {result.out_dir}/annotations.csv")
    return 0
