"""``prepare_dataset``: detect, align and pose-label a whole dataset, resumably and in shards.

One run:

1. indexes the dataset (:func:`facefactors.data.load_dataset`) and plans one job
   per sample with a stable output name (:mod:`facefactors.prepare.plan`);
2. reads every progress log already in the output folder and skips each sample
   whose record is there (and whose aligned image exists);
3. processes the rest of its share (``--shard i/n``: positions ``% n == i``;
   ``--limit``: the first N of them), in this process or in ``--workers``
   processes that each load their own MTCNN; records come back in dataset order
   and are appended to the run's progress log at once;
4. writes the outputs (:mod:`facefactors.prepare.outputs`). An unsharded run
   writes ``annotations.csv`` for its samples. A shard writes
   ``annotations.shard-i-of-n.csv``, and whichever shard completes the dataset
   also writes the merged ``annotations.csv``. Shards run on other machines are
   merged by copying their output folders together and running :func:`merge_outputs`
   (``facefactors prepare ... --merge``).

The final files depend only on the records, which are the same whichever way the
work was split or interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facefactors.errors import ConfigError, DataError
from facefactors.prepare.outputs import write_annotations, write_outputs
from facefactors.prepare.plan import IMAGE_FORMATS, Job, fingerprint, plan_jobs
from facefactors.prepare.process import Settings, init_worker, process_chunk
from facefactors.prepare.progress import (
    ProgressLog,
    Shard,
    check_compatible,
    load_all_progress,
    progress_path,
    read_headers,
)

Log = Callable[[str], None]


@dataclass
class PrepareOptions:
    """Everything ``facefactors prepare`` takes.

    Attributes:
        dataset: Loader name (``rafdb``, ``ferplus``, ``affectnet7``, ``ckplus7``, ...).
        root: Dataset folder (or CSV file).
        out: Output folder.
        size: Side of the aligned images (112 or 64).
        workers: Processes; 1 runs in this process.
        shard: The share of the samples this run handles.
        detect: Detect with MTCNN (False = ``--no-detect`` for pre-aligned crops).
        weights_dir: MTCNN weight folder (None: the cache folder).
        limit: Handle at most this many samples of the share (a quick look, or a
            run to be resumed later).
        image_format: ``"jpg"`` or ``"png"``.
        dataset_options: Keyword options for the loader (``--opt key=value``).
        chunk: Samples per work unit sent to a worker.
        min_face_size: MTCNN's smallest face in pixels.
        progress: Show a progress bar; None = when stderr is a terminal.
    """

    dataset: str
    root: str | os.PathLike
    out: str | os.PathLike
    size: int = 112
    workers: int = 1
    shard: Shard = field(default_factory=Shard)
    detect: bool = True
    weights_dir: str | None = None
    limit: int | None = None
    image_format: str = "jpg"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    chunk: int = 8
    min_face_size: float = 20.0
    progress: bool | None = None


@dataclass
class PrepareResult:
    """What a run did.

    Attributes:
        out_dir: The output folder.
        selected: Samples in this run's share (after ``limit``).
        processed: Samples processed now (the others were reused from progress logs).
        records: The records of the selected samples, in dataset order.
        stats: Statistics of ``annotations.csv`` if this run wrote it, else None.
        remaining: Samples of the whole dataset still without a record.
    """

    out_dir: Path
    selected: int
    processed: int
    records: list[dict[str, Any]]
    stats: dict[str, Any] | None
    remaining: int


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def _load_index(opts: PrepareOptions):
    """The dataset index; listed-but-missing images become ``missing`` failures, not errors."""
    from facefactors.data.registry import LOADERS, load_dataset, loader_options

    kwargs = dict(opts.dataset_options)
    accepted = loader_options(opts.dataset) if opts.dataset in LOADERS else ()
    if "check_files" in accepted and not {"check_files", "missing"} & set(kwargs):
        kwargs["check_files"] = False
    return load_dataset(opts.dataset, opts.root, **kwargs)


def _crop_landmarks(opts: PrepareOptions, log: Log) -> bool:
    """Whether MTCNN can supply landmarks (hence pose) in ``--no-detect`` mode."""
    from facefactors.faces.weights import FETCH_HINT, require_mtcnn_weights, weights_status

    if opts.weights_dir is not None:
        require_mtcnn_weights(opts.weights_dir)  # an explicit folder must be right
        return True
    if all(status == "ok" for _n, _p, status in weights_status(None)):
        return True
    log(
        "note: MTCNN weights not found, so images without dataset landmarks get an unknown "
        f"pose (pose_bin -1); {FETCH_HINT} to estimate it."
    )
    return False


def make_header(opts: PrepareOptions, index, jobs: list[Job], crop_landmarks: bool) -> dict:
    """The progress-log header: settings, dataset fingerprint and class facts."""
    return {
        "kind": "header",
        "version": 1,
        "dataset": opts.dataset,
        "options": dict(sorted(opts.dataset_options.items())),
        "root": str(opts.root),
        "num_samples": len(jobs),
        "fingerprint": fingerprint(jobs),
        "size": opts.size,
        "format": opts.image_format,
        "detect": opts.detect,
        "crop_landmarks": crop_landmarks,
        "min_face_size": opts.min_face_size,
        "classes": list(index.classes),
        "label_names": list(index.label_names),
        "extra_neutral": index.extra_neutral,
        "folds": index.meta.get("folds"),
        "dropped": dict(index.meta.get("dropped", {})),
        "shard": str(opts.shard),
    }


def reusable(rec: dict[str, Any] | None, job: Job, out_dir: Path) -> bool:
    """Whether an earlier record of ``job`` stands: its image exists, or its failure holds.

    A record under the job's legacy output name (a folder prepared before the split
    stopped repeating in paths) stands too, with its own path.
    """
    if rec is None or rec.get("key") != job.key:
        return False
    if rec.get("path") not in (job.out_rel, job.legacy_rel or job.out_rel):
        return False
    if rec["status"] == "ok":
        return (out_dir / rec["path"]).is_file()
    if rec["status"] == "missing":  # retry once the file has appeared
        return not (job.sample.path is not None and os.path.isfile(job.sample.path))
    return True


def _validate(opts: PrepareOptions) -> None:
    if opts.size < 16:
        raise ConfigError(f"Option --size must be at least 16 pixels, not {opts.size}.")
    if opts.workers < 1:
        raise ConfigError(f"Option --workers must be at least 1, not {opts.workers}.")
    if opts.limit is not None and opts.limit < 0:
        raise ConfigError(f"Option --limit must be 0 or more, not {opts.limit}.")
    if opts.image_format not in IMAGE_FORMATS:
        raise ConfigError(
            f"Option --format {opts.image_format!r} must be one of {', '.join(IMAGE_FORMATS)}."
        )
    if opts.chunk < 1:
        raise ConfigError(f"Option --chunk must be at least 1, not {opts.chunk}.")


def _run_jobs(
    pending: list[Job], settings: Settings, opts: PrepareOptions, plog: ProgressLog, bar
) -> list[dict[str, Any]]:
    """Process jobs (in this process or a pool), appending records as they arrive."""
    chunks = [pending[k : k + opts.chunk] for k in range(0, len(pending), opts.chunk)]
    out: list[dict[str, Any]] = []

    def take(records: list[dict[str, Any]]) -> None:
        plog.append(records)
        out.extend(records)
        bar.update(len(records))

    if opts.workers == 1:
        init_worker(settings)
        for chunk in chunks:
            take(process_chunk(chunk))
        return out
    import multiprocessing as mp

    # Spawned (not forked) workers: forking a process whose torch thread pools are
    # running can deadlock. Each worker gets an equal share of the cores.
    threads = max(1, (os.cpu_count() or 1) // opts.workers)
    wsettings = dataclasses.replace(settings, threads=threads)
    ctx = mp.get_context("spawn")
    with ctx.Pool(opts.workers, initializer=init_worker, initargs=(wsettings,)) as pool:
        for records in pool.imap(process_chunk, chunks):  # imap keeps dataset order
            take(records)
    return out


def prepare_dataset(opts: PrepareOptions, log: Log = _stderr) -> PrepareResult:
    """Prepare one dataset (or one shard of it) into ``opts.out``; see the module docstring.

    Raises:
        ConfigError: Bad options, or an output folder prepared with other settings.
        DataError: Dataset errors (missing label file, malformed line, ...).
        WeightsError: MTCNN weights missing when detection needs them.
    """
    from tqdm.auto import tqdm

    _validate(opts)
    index = _load_index(opts)
    jobs = plan_jobs(index, opts.image_format)
    if opts.detect:
        from facefactors.faces.weights import require_mtcnn_weights

        require_mtcnn_weights(opts.weights_dir)
        crop = False
    else:
        crop = _crop_landmarks(opts, log)
    header = make_header(opts, index, jobs, crop)
    out_dir = Path(opts.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = load_all_progress(out_dir, header)

    selected = [j for j in jobs if opts.shard.selects(j.index)]
    if opts.limit is not None:
        selected = selected[: opts.limit]
    pending = [j for j in selected if not reusable(done.get(j.index), j, out_dir)]
    log(
        f"prepare {opts.dataset}: {len(jobs)} samples, {len(selected)} in this run "
        f"(shard {opts.shard}), {len(selected) - len(pending)} already done, "
        f"{len(pending)} to process with {opts.workers} worker(s)."
    )
    settings = Settings(
        out_dir=str(out_dir),
        size=opts.size,
        image_format=opts.image_format,
        detect=opts.detect,
        crop_landmarks=crop,
        weights_dir=opts.weights_dir,
        min_face_size=opts.min_face_size,
    )
    show = sys.stderr.isatty() if opts.progress is None else opts.progress
    with tqdm(
        total=len(selected), initial=len(selected) - len(pending), desc="prepare", disable=not show
    ) as bar:
        if pending:
            with ProgressLog(progress_path(out_dir, opts.shard), header) as plog:
                for rec in _run_jobs(pending, settings, opts, plog, bar):
                    done[int(rec["i"])] = rec

    records = [done[j.index] for j in selected]
    stats = None
    if opts.shard.count == 1:
        remaining = sum(1 for j in jobs if j.index not in done)
        stats = write_outputs(out_dir, header, records)
    else:
        name = f"annotations{opts.shard.suffix()}.csv"
        n = write_annotations(out_dir / name, records)
        log(f"shard {opts.shard}: wrote {n} rows to {out_dir / name}.")
        stats, remaining = _merge_if_last(out_dir, header, jobs, opts.shard, log)
    return PrepareResult(out_dir, len(selected), len(pending), records, stats, remaining)


MERGE_LOCK = ".merge.lock"


def _merge_if_last(
    out_dir: Path, header: dict, jobs: list[Job], shard: Shard, log: Log
) -> tuple[dict[str, Any] | None, int]:
    """Merge ``annotations.csv`` if every sample now has a record; return (stats, remaining).

    Shards running at the same time each read the others' progress logs *now*
    (not as they were when this shard started), under an exclusive lock on
    ``OUT/.merge.lock``: a shard's records are on disk before it takes the lock,
    so whichever shard takes it last sees every record and merges. The lock is
    ``flock``, which the OS releases when a process dies: a killed shard never
    leaves a stale lock behind.
    """
    with _exclusive(out_dir / MERGE_LOCK):
        done = load_all_progress(out_dir, header)
        remaining = sum(1 for j in jobs if j.index not in done)
        if remaining:
            log(
                f"shard {shard}: {remaining} samples of other shards are not done yet; the last "
                "shard to finish writes annotations.csv (or run `facefactors prepare ... --merge` "
                "once they are all done)."
            )
            return None, remaining
        stats = write_outputs(out_dir, header, [done[j.index] for j in jobs])
    log(
        f"shard {shard}: all {len(jobs)} samples have a record, this shard finished last: "
        f"merged into {out_dir / 'annotations.csv'}."
    )
    return stats, 0


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if absent), waiting for it."""
    with open(path, "a+b") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def merge_outputs(out_dir: str | os.PathLike, dataset: str | None = None) -> dict[str, Any]:
    """Write ``annotations.csv`` and the other outputs from the progress logs in a folder.

    For shards prepared on different machines: copy their output folders into one
    (the images and ``progress.shard-*.jsonl`` files) and merge.

    Args:
        out_dir: The output folder.
        dataset: If given, the loader name the logs must have been written for.

    Returns:
        The statistics of the merged output.

    Raises:
        DataError: No progress logs, or samples without a record (naming how many).
        ConfigError: Logs written with different settings, or for another dataset.
    """
    out_dir = Path(out_dir)
    headers = read_headers(out_dir)
    if not headers:
        raise DataError(f"Folder {out_dir} holds no prepare progress logs (progress*.jsonl).")
    first_path, header = headers[0]
    if dataset is not None and header["dataset"] != dataset:
        raise ConfigError(
            f"Progress log {first_path} was written for dataset {header['dataset']}, not {dataset}."
        )
    for path, other in headers[1:]:
        check_compatible(path, other, header)
    done = load_all_progress(out_dir, header)
    missing = [i for i in range(header["num_samples"]) if i not in done]
    if missing:
        logs = ", ".join(p.name for p, _ in headers)
        raise DataError(
            f"Cannot merge {out_dir}: {len(missing)} of {header['num_samples']} samples have no "
            f"record yet (first: sample {missing[0]}); logs found: {logs}."
        )
    with _exclusive(out_dir / MERGE_LOCK):  # never beside a shard's own merge
        return write_outputs(out_dir, header, [done[i] for i in range(header["num_samples"])])
