"""DDP smoke test: two CPU processes on gloo stay in sync through Algorithm 1's phases."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp

from facefactors.ipd.model import build_model
from facefactors.ipd.train import read_checkpoint as read_training_state
from facefactors.ipd.train import train
from ipd_helpers import random_bundle, tiny_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    import facefactors.ipd.train as ipd_train

    # Spy on what the trainer sees: its place in the process group and its batches.
    seen: dict = {"images": []}
    init, prepare = ipd_train.ddp.init_distributed, ipd_train.prepare_batch

    def init_spy(*args, **kwargs):
        info = init(*args, **kwargs)
        seen["rank"], seen["world_size"] = info.rank, info.world_size
        return info

    def prepare_spy(raw, *args, **kwargs):
        seen["images"].append(raw["image"].clone())
        return prepare(raw, *args, **kwargs)

    ipd_train.ddp.init_distributed, ipd_train.prepare_batch = init_spy, prepare_spy
    cfg = tiny_config("ipd", epochs=1, max_steps=2, validate=False)
    # Each rank draws its own half of the data: unsynchronised gradients would diverge.
    result = train(cfg, out, data=random_bundle(16))
    seen["result_rank"] = result.rank
    torch.save(result.model.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    torch.save(seen, os.path.join(out, f"seen{rank}.pt"))


def _synced(a: dict, b: dict) -> None:
    # BatchNorm running statistics are per process between DDP's buffer broadcasts.
    for k, v in a.items():
        if v.is_floating_point() and "running" not in k:
            torch.testing.assert_close(v, b[k], rtol=1e-5, atol=1e-6, msg=k)


def test_ddp_two_processes_stay_in_sync(tmp_path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    _synced(a, b)
    # Really distributed: two ranks of one group, each on its own shard of the data.
    seen = [torch.load(tmp_path / f"seen{r}.pt", weights_only=True) for r in (0, 1)]
    for r, s in enumerate(seen):
        assert (s["world_size"], s["rank"], s["result_rank"]) == (2, r, r)
        assert len(s["images"]) == 2 and all(x.shape == (4, 3, 32, 32) for x in s["images"])
    keys = [{tuple(img.flatten()[:8].tolist()) for x in s["images"] for img in x} for s in seen]
    assert len(keys[0]) == len(keys[1]) == 8  # 2 steps × 4 distinct images per rank
    assert not keys[0] & keys[1]  # the two ranks never saw the same image
    ckpt = read_training_state(tmp_path / "checkpoints" / "last.pt")
    assert ckpt["step"] == 2
    _synced(ckpt["model"], a)  # rank 0 wrote the checkpoint
    # The weights did move from their (seeded) initial values: training happened.
    cfg = tiny_config("ipd")
    torch.manual_seed(cfg.train.seed)
    init = build_model(cfg).state_dict()
    for name in ("e_exp.conv1.weight", "e_pose.conv1.weight", "dec.to_rgb.weight", "d.head.weight"):
        assert not torch.equal(init[name], a[name]), name
    assert torch.equal(init["e_id.conv1.weight"], a["e_id.conv1.weight"])
