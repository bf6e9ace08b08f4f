"""``facefactors prepare``: detect, align and pose-label a dataset into a training folder.

Modules (import them directly; this package imports nothing at load time):

- :mod:`~facefactors.prepare.runner`: ``prepare_dataset(PrepareOptions)`` and
  ``merge_outputs(dir)``: the whole run, resumable and shardable.
- :mod:`~facefactors.prepare.plan`: one ``Job`` per sample, with stable output names.
- :mod:`~facefactors.prepare.process`: per-sample work (what each worker runs).
- :mod:`~facefactors.prepare.progress`: the append-only JSONL progress logs.
- :mod:`~facefactors.prepare.outputs`: ``annotations.csv``, ``failures.csv``, manifest.
- :mod:`~facefactors.prepare.stats`: pose-bin (Table 1 layout) and class counts.
- :mod:`~facefactors.data.prepared`: ``load_prepared(dir)`` reads the folder back.

Output folder layout::

    DIR/images/<split>/<source path relative to the dataset>.jpg   aligned size x size crops
    DIR/annotations.csv    path,label,split,fold,subject,yaw,pitch,roll,pose_bin,det_score
    DIR/failures.csv       file,split,label,reason,detail   (no_face / corrupt / missing)
    DIR/stats.md, stats.json, prepared.json
    DIR/progress[.shard-i-of-n].jsonl   one record per finished sample (resume, merge)
"""
