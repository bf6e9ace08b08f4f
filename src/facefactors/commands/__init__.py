"""CLI commands. Each module defines ``register(subparsers)`` and a ``run(args)``.

Registration only builds argparse parsers; the work (and the heavy imports)
happen inside ``run``.
"""

from __future__ import annotations

from facefactors.commands import (
    bench,
    demo,
    edit,
    evaluate,
    export,
    fit3d,
    predict,
    prepare,
    pretrain_id,
    reproduce,
    synth,
    train,
    weights,
)

# Order is the order in `facefactors --help`.
COMMANDS = [
    synth.register,
    pretrain_id.register,
    train.register,
    evaluate.register,
    reproduce.register,
    prepare.register,
    fit3d.register,
    weights.register,
    predict.register,
    edit.register,
    export.register,
    bench.register,
    demo.register,
]
