"""experiments.jobs: the demo's trainings in this process or side by side in workers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from facefactors.experiments.jobs import Job, run_jobs


def _write(path: str, value: int, fail: bool = False, sleep: float = 0.0) -> str:
    """A toy job: writes its value, the worker's pid, its torch thread count and start time."""
    start = time.monotonic()
    if fail:
        raise RuntimeError(f"job of {value} failed")
    time.sleep(sleep)
    Path(path).write_text(f"{value} {os.getpid()} {torch.get_num_threads()} {start}")
    return "a result that is not sent back"


def _jobs(tmp_path, fail_at: int | None = None, sleep: float = 0.0) -> list[Job]:
    return [
        Job(f"job {i}", _write, {"path": str(tmp_path / f"{i}.txt"), "value": i * i,
            "fail": i == fail_at, "sleep": sleep}, cost=float(i))
        for i in range(4)
    ]  # fmt: skip


@pytest.mark.parametrize("workers", [1, 2])
def test_every_job_runs_once_with_its_own_arguments(tmp_path, workers):
    logged: list[str] = []
    seconds = run_jobs(_jobs(tmp_path), workers, logged.append)
    assert set(seconds) == {f"job {i}" for i in range(4)}
    assert all(s >= 0 for s in seconds.values())
    fields = [(tmp_path / f"{i}.txt").read_text().split() for i in range(4)]
    assert [int(f[0]) for f in fields] == [0, 1, 4, 9]  # each job got its own kwargs
    pids = {int(f[1]) for f in fields}
    if workers == 1:  # in this process, in the given order
        assert pids == {os.getpid()}
        assert logged == [f"job {i}: trained in {seconds[f'job {i}']:.0f} s" for i in range(4)]
    else:  # in spawned workers, never here, each with its share of the cores
        assert os.getpid() not in pids
        assert {int(f[2]) for f in fields} == {max(1, len(os.sched_getaffinity(0)) // 2)}
        assert sorted(logged) == sorted(f"job {i}: trained in {seconds[f'job {i}']:.0f} s"
                                        for i in range(4))  # fmt: skip


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_job_is_raised_with_its_label(tmp_path, workers):
    with pytest.raises(RuntimeError, match="job of 1 failed") as info:
        run_jobs(_jobs(tmp_path, fail_at=1), workers)
    assert "in job 'job 1'" in info.value.__notes__
    if workers == 1:  # the jobs before it kept their output; the ones after never started
        assert (tmp_path / "0.txt").is_file() and not (tmp_path / "2.txt").exists()


def test_after_a_failure_workers_start_no_further_job(tmp_path):
    # Costliest first: jobs 3 and 2 start; 3 fails at once while 2 is still running.
    with pytest.raises(RuntimeError, match="job of 9 failed"):
        run_jobs(_jobs(tmp_path, fail_at=3, sleep=1.0), 2)
    assert (tmp_path / "2.txt").is_file()  # the running job finished and kept its output
    assert not (tmp_path / "1.txt").exists() and not (tmp_path / "0.txt").exists()


def test_workers_start_the_costliest_jobs_first(tmp_path):
    run_jobs(_jobs(tmp_path, sleep=0.5), 2)
    start = [float((tmp_path / f"{i}.txt").read_text().split()[3]) for i in range(4)]
    assert max(start[2], start[3]) < min(start[0], start[1])  # costs 3 and 2 before 1 and 0


def test_each_job_is_logged_when_it_ends_not_when_all_have(tmp_path):
    jobs = [
        Job("long", _write, {"path": str(tmp_path / "long.txt"), "value": 0, "sleep": 3.0}, 2),
        Job("short", _write, {"path": str(tmp_path / "short.txt"), "value": 1}, 1),
    ]
    logged: list[tuple[str, bool]] = []
    run_jobs(jobs, 2, lambda m: logged.append((m.split(":")[0], (tmp_path / "long.txt").exists())))
    assert logged[0] == ("short", False)  # logged while the long job was still running
    assert logged[1] == ("long", True)


def test_labels_must_be_distinct(tmp_path):
    jobs = _jobs(tmp_path)
    with pytest.raises(ValueError, match="distinct"):
        run_jobs([jobs[0], jobs[0]], 2)
    assert not (tmp_path / "0.txt").exists()


def test_a_run_is_finished_only_with_its_model_and_its_last_checkpoint(tmp_path):
    from facefactors.experiments.jobs import run_finished

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"x")
    assert not run_finished(tmp_path)  # interrupted: resumes
    (tmp_path / "model.pt").write_bytes(b"x")
    assert run_finished(tmp_path)
    (tmp_path / "checkpoints" / "last.pt").unlink()
    assert not run_finished(tmp_path)
