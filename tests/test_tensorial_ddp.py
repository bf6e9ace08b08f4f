"""DDP: two CPU processes on gloo train the tensorial model in sync, each on its shard."""

from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp

from facefactors.tensorial.checkpoints import read_checkpoint


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    torch.set_num_threads(1)
    import facefactors.tensorial.train as T
    from facefactors.tensorial.config import preset
    from facefactors.tensorial.data import build_data
    from test_tensorial_train import TINY

    seen: dict = {"images": []}
    from_synth = T.Batch.from_synth

    def spy(raw, device=None):  # what this rank trains on
        seen["images"].append(raw["image"].clone())
        return from_synth(raw, device)

    T.Batch.from_synth = staticmethod(spy)
    cfg = preset("tensorial_synth_quick", TINY + ["train.max_steps=2", "train.validate=false"])
    result = T.train(cfg, out, data=build_data(cfg))
    seen["rank"] = result.rank
    weights = {k: v for k, v in result.generator.state_dict().items()}
    torch.save({"weights": weights, "seen": seen}, os.path.join(out, f"rank{rank}.pt"))


def test_two_ranks_train_in_sync_on_their_own_shards(tmp_path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert (a["seen"]["rank"], b["seen"]["rank"]) == (0, 1)
    for k, v in a["weights"].items():  # gradients were all-reduced: identical weights
        torch.testing.assert_close(v, b["weights"][k], rtol=1e-5, atol=1e-6, msg=k)
    keys = [{tuple(i.flatten()[:8].tolist()) for x in s["seen"]["images"] for i in x}
            for s in (a, b)]  # fmt: skip
    assert len(keys[0]) == len(keys[1]) == 8 and not keys[0] & keys[1]
    ckpt = read_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert ckpt["step"] == 2 and 0.0 <= ckpt["began_k"] <= 1.0
