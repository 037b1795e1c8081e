"""Seed 001's figure from an init_activation sweep: each hidden layer's activation histogram per setting.

    python scripts/activation_figure.py SWEEP_DIR OUT.png [EPOCH]

Reads every run's activations.json (written by trainer.histograms=true; EPOCH 0 = before training,
the seed's figure) and draws one row per run, one column per layer.
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sweep, out = Path(sys.argv[1]), Path(sys.argv[2])
epoch = int(sys.argv[3]) if len(sys.argv) > 3 else 0
runs = sorted(p.parent for p in sweep.glob("*/activations.json"))
records = [json.loads((r / "activations.json").read_text()) for r in runs]
cols = max(len(rec["layers"]) for rec in records)
fig, axes = plt.subplots(len(runs), cols, figsize=(1.6 * cols, 1.1 * len(runs)), squeeze=False)
for row, (run, rec) in enumerate(zip(runs, records)):
    entry = next(e for e in rec["epochs"] if e["epoch"] == epoch)
    for col, layer in enumerate(rec["layers"]):
        h, ax = entry["activations"][layer], axes[row][col]
        ax.stairs(h["counts"], h["edges"], fill=True)
        ax.set_yticks([])
        ax.tick_params(labelsize=5)
        if row == 0:
            ax.set_title(f"layer {col + 1}", fontsize=7)
    axes[row][0].set_ylabel(run.name.replace("model.", "").replace(",seed=0", "").replace(",", "\n"),
                            fontsize=5, rotation=0, ha="right", va="center")
fig.suptitle(f"hidden-layer activations, {rec['inputs']} validation images, epoch {epoch}", fontsize=8)
fig.tight_layout()
fig.savefig(out, dpi=80)
