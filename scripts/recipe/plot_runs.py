#!/usr/bin/env python3
"""Learning curves of several `swav pretrain` runs side by side, for docs/demo-recipe.md.

    python scripts/recipe/plot_runs.py OUT.png LABEL=RUN_DIR [LABEL=RUN_DIR ...]

Each RUN_DIR is a `swav pretrain --output` folder (or a `swav supervised` one). The figure
has four panels: the loss minus ln K (SwAV runs; a run that sits at 0 has collapsed), the
per-sample code entropy (how sharp the codes are), the k-NN top-1 at k = 20 during training
from each run's knn.jsonl (runs with `--eval-knn-every`), and the final k-NN top-1 at k = 20
from each run's knn.json, the trained network beside the random one. Needs matplotlib.
"""

import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_run(path):
    metrics = []
    metrics_path = os.path.join(path, "metrics.jsonl")
    if os.path.exists(metrics_path):  # `swav supervised` writes none
        with open(metrics_path) as f:
            metrics = [json.loads(line) for line in f if line.strip()]
    knn = None
    knn_path = os.path.join(path, "knn.json")
    if os.path.exists(knn_path):
        with open(knn_path) as f:
            knn = json.load(f)
    prototypes = None
    with open(os.path.join(path, "config.toml")) as f:
        for line in f:
            if line.startswith("nmb_prototypes"):
                prototypes = int(line.split("=")[1])
    curve = []
    curve_path = os.path.join(path, "knn.jsonl")
    if os.path.exists(curve_path):  # written with --eval-knn-every
        with open(curve_path) as f:
            for line in f:
                if line.strip():
                    point = json.loads(line)
                    top1 = {entry["k"]: entry["top1"] for entry in point["top1"]}
                    if 20 in top1:
                        curve.append((point["iteration"], 100.0 * top1[20]))
    return metrics, knn, prototypes, curve


def top1_at_20(knn, model):
    for result in knn["results"]:
        if result["model"] == model:
            for entry in result["top1"]:
                if entry["k"] == 20:
                    return 100.0 * entry["top1"]
    return None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = sys.argv[1]
    runs = []
    for arg in sys.argv[2:]:
        label, _, path = arg.partition("=")
        if not path:
            sys.exit(f"expected LABEL=RUN_DIR, got {arg!r}")
        runs.append((label, *read_run(path)))
    fig, (ax_loss, ax_entropy, ax_curve, ax_knn) = plt.subplots(1, 4, figsize=(21, 4.8))
    # One colour per run in every panel, whichever panels the run appears in.
    colour = {label: f"C{i % 10}" for i, (label, *_) in enumerate(runs)}
    for label, metrics, _, prototypes, _ in runs:
        if not metrics or "codes_entropy" not in metrics[0]:
            continue
        iters = [m["iteration"] for m in metrics]
        ln_k = math.log(prototypes)
        ax_loss.plot(iters, [m["loss"] - ln_k for m in metrics], label=label, c=colour[label])
        ax_entropy.plot(
            iters, [m["sample_code_entropy"] for m in metrics], label=label, c=colour[label]
        )
    ax_loss.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax_loss.set(title="loss − ln K (0: collapsed)", xlabel="iteration")
    ax_entropy.set(title="per-sample code entropy (nats)", xlabel="iteration")
    ax_loss.legend(fontsize=8)
    for label, _, knn, _, curve in runs:
        if not curve:
            continue
        ax_curve.plot(*zip(*curve), marker="o", ms=3, label=label, c=colour[label])
        if knn is not None:
            ax_curve.axhline(top1_at_20(knn, "random init"), c=colour[label], lw=0.8, ls=":")
    ax_curve.set(title="k-NN top-1 at k = 20 while training (%; dotted: random)", xlabel="iteration")
    if ax_curve.lines:
        ax_curve.legend(fontsize=8)
    labels, trained, random = [], [], []
    for label, _, knn, _, _ in runs:
        if knn is None:
            continue
        name = next(r["model"] for r in knn["results"] if r["model"] != "random init")
        labels.append(label)
        trained.append(top1_at_20(knn, name))
        random.append(top1_at_20(knn, "random init"))
    xs = range(len(labels))
    ax_knn.bar([x - 0.2 for x in xs], trained, width=0.4, label="trained")
    ax_knn.bar([x + 0.2 for x in xs], random, width=0.4, label="random init")
    for x, t in zip(xs, trained):
        ax_knn.text(x - 0.2, t + 0.5, f"{t:.1f}", ha="center", fontsize=8)
    ax_knn.set_xticks(list(xs), labels, rotation=20, ha="right", fontsize=8)
    ax_knn.set(title="k-NN top-1 at k = 20 (%)", ylim=(0, 100))
    ax_knn.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
