"""The README's pictures of every edit, drawn by a trained tensorial run.

``python -m facefactors.experiments.edit_gallery --checkpoint RUN --out docs/edits``
writes, with the per-picture PSNRs it measured in ``gallery.json``:

- ``synthetic.png``: pairs of unseen synthetic test faces (different people). Columns:
  the target, the driver, the target's reconstruction, the expression swap beside the
  renderer's true edit (the target with the driver's expression coefficients), the pose
  swap beside its truth (the target in the driver's pose), and the light swap.
- ``photo.png``: a real photo (Grace Hopper) edited with a second one (the astronaut)
  as driver and light source, each pasted back into the whole photo, with the crops.
  Needs the MTCNN weights (``facefactors weights fetch mtcnn``).
- ``mesh.png``: the mesh ``reconstruct_3d`` gives for a test face next to its true
  mesh, seen from the front and from the side, coloured by the decoded albedo.

Nothing here is tuned or picked: the pairs are the first of
:func:`facefactors.experiments.tensorial_edits.transfer_pairs` on the test split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from facefactors.experiments.tensorial_edits import (
    decode_swapped,
    masked_psnr,
    transfer_pairs,
    true_targets,
)
from facefactors.imaging import to_hwc_uint8


def _test_set(data, size: int, identities: int = 20, per_identity: int = 6):
    """Unseen test identities rendered like the run's training data (``data``)."""
    from facefactors.experiments.tensorial_eval import render_test_set

    return render_test_set(
        identities, per_identity, size, data.synth_seed, data.synth_intensity, data.synth_classes
    )


def synthetic_rows(editor, test, count: int = 4) -> tuple[list[list[np.ndarray]], dict]:
    """Rows of (S, S, 3) uint8 pictures, and the masked PSNRs of the swaps vs their truth."""
    model, x = editor.model, test.table.columns["image"]
    ex = transfer_pairs(test, "expression", count, seed=0)
    po = transfer_pairs(test, "pose", count, seed=0)
    t_ex, t_po = true_targets(test, ex, "expression"), true_targets(test, po, "pose")
    src, drv = x[ex[:, 0]], x[ex[:, 1]]
    ex_edit, recon = decode_swapped(model, src, drv, ("z_exp",))
    po_edit, po_recon = decode_swapped(model, x[po[:, 0]], x[po[:, 1]], ("z_p",))
    light, _ = decode_swapped(model, src, drv, ("z_l",))
    stats = {
        "expression_swap_psnr": masked_psnr(ex_edit, t_ex["image"], t_ex["mask"]).tolist(),
        "expression_noedit_psnr": masked_psnr(recon, t_ex["image"], t_ex["mask"]).tolist(),
        "pose_swap_psnr": masked_psnr(po_edit, t_po["image"], t_po["mask"]).tolist(),
        "pose_noedit_psnr": masked_psnr(po_recon, t_po["image"], t_po["mask"]).tolist(),
    }
    cols = [src, drv, recon, ex_edit, t_ex["image"], x[po[:, 1]], po_edit, t_po["image"], light]
    pics = [to_hwc_uint8(c.clamp(-1, 1)) for c in cols]
    return [[p[i] for p in pics] for i in range(count)], stats


SYNTH_TITLES = [
    "target", "expression\ndriver", "target\nreconstructed", "expression\nswapped",
    "true\nexpression edit", "pose\ndriver", "pose\nswapped", "true\npose edit",
    "light swapped\n(driver's z_l)",
]  # fmt: skip


def save_grid(rows: list[list[np.ndarray]], titles: list[str], path: Path, scale: float = 1.1):
    """A grid of images with column titles, written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, m = len(rows), len(rows[0])
    fig, axes = plt.subplots(n, m, figsize=(scale * m, scale * n + 0.5), squeeze=False)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            ax = axes[i][j]
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def photo_panel(editor, path: Path) -> None:
    """Grace Hopper with the astronaut's expression, pose and light, pasted back."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from facefactors.faces.samples import astronaut, grace_hopper

    target, driver = grace_hopper(), astronaut()
    edits = {
        "expression swapped": editor.transfer_expression(target, driver),
        "pose swapped": editor.transfer_pose(target, driver),
        "light swapped": editor.relight(target, driver),
    }
    fig, axes = plt.subplots(2, 5, figsize=(11, 5), gridspec_kw={"height_ratios": [3, 1]})
    big = [("target", target), ("driver / light source", driver)]
    big += [(k, r.image) for k, r in edits.items()]
    crops = [editor.decode(editor.encode_one(target)), editor.decode(editor.encode_one(driver))]
    crops += [r.crop[None] for r in edits.values()]
    for j, ((title, img), crop) in enumerate(zip(big, crops)):
        axes[0][j].imshow(img)
        axes[0][j].set_title(title, fontsize=9)
        axes[1][j].imshow(crop[0], interpolation="nearest")
        axes[1][j].set_title("decoded crop", fontsize=7)
        for ax in axes[:, j]:
            ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def mesh_panel(editor, test, path: Path) -> dict:
    """A test face's reconstructed mesh beside its true mesh; returns the vertex error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from facefactors.experiments.tensorial_eval import vertex_error_mm

    x = test.table.columns["image"][:1]
    mesh = editor.reconstruct_3d(x[0], aligned=True)
    true = test.table.columns["vertices"][0].reshape(-1, 3).numpy()
    err = float(vertex_error_mm(mesh.vertices[None], true[None])[0])
    fig, axes = plt.subplots(1, 5, figsize=(11, 2.6))
    axes[0].imshow(to_hwc_uint8(x)[0], interpolation="nearest")
    axes[0].set_title("input", fontsize=9)
    views = [("front", 0, 1), ("side", 2, 1)]
    for k, (name, verts, colours) in enumerate(
        [("reconstructed", mesh.vertices, mesh.colours / 255.0), ("true", true, "0.6")]
    ):
        for v, (view, a, b) in enumerate(views):
            ax = axes[1 + 2 * k + v]
            ax.scatter(verts[:, a], verts[:, b], c=colours, s=6)
            ax.set_aspect("equal")
            ax.set_title(f"{name}, {view}", fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {"mesh_vertex_error_mm": err}


def main(argv: list[str] | None = None) -> None:
    from facefactors.inference.editor import FaceEditor, resolve_run_file
    from facefactors.tensorial.checkpoints import load_generator

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="tensorial run folder or checkpoint")
    p.add_argument("--out", default="docs/edits")
    p.add_argument("--no-photo", action="store_true", help="skip the real photo (no MTCNN)")
    a = p.parse_args(argv)
    torch.manual_seed(0)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model, cfg = load_generator(resolve_run_file(a.checkpoint))
    editor = FaceEditor(model)
    test = _test_set(cfg.data, editor.input_size)
    rows, stats = synthetic_rows(editor, test)
    save_grid(rows, SYNTH_TITLES, out / "synthetic.png")
    stats |= mesh_panel(editor, test, out / "mesh.png")
    if not a.no_photo:
        photo_panel(editor, out / "photo.png")
    stats["checkpoint"] = str(a.checkpoint)
    (out / "gallery.json").write_text(json.dumps(stats, indent=1) + "\n")
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
