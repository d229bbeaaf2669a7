#!/usr/bin/env python3
"""How well the recipe choice's label-free score (effective rank) tracks k-NN accuracy, for
docs/demo-recipe.md. Standard library only.

    python scripts/recipe/score_validation.py LABEL=RUN_DIR [LABEL=RUN_DIR ...]

Each RUN_DIR is a `swav pretrain --preset small-data` run (it holds recipe-choice.json and
probes/<candidate>/). Before running this script, give every probe its k-NN accuracy with the
labels the choice never saw, saved beside it:

    swav eval knn --weights RUN_DIR/probes/<candidate>/checkpoint.safetensors --k 20 \\
        [--data DIR ...] > RUN_DIR/probes/<candidate>/knn.txt

The script prints one markdown row per probe (effective rank, collapse, k-NN at k = 20,
the chosen one marked), then per dataset the Spearman rank correlation between effective
rank and k-NN over its probes, whether the choice picked the probe with the best k-NN, and
what the choice lost against it; then the same over every probe of every dataset, with each
dataset's mean taken out of both figures (so dataset difficulty does not count as
agreement), and the raw pooled correlation.
"""

import json
import os
import re
import sys


def ranks(values):
    """Average ranks (1 = smallest), ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            result[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return result


def pearson(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return float("nan")
    return sxy / (sxx * syy) ** 0.5


def spearman(x, y):
    return pearson(ranks(x), ranks(y))


def probe_knn(path):
    """The k = 20 top-1 (percent) that `swav eval knn` printed."""
    with open(path) as f:
        text = f.read()
    match = re.search(r"k = 20\s+top-1\s+([0-9.]+)%", text)
    if not match:
        sys.exit(f"{path}: no `k = 20 top-1` line (run swav eval knn --k 20 into it)")
    return float(match.group(1))


def final_knn(run):
    path = os.path.join(run, "knn.json")
    if not os.path.exists(path):
        return None, None
    with open(path) as f:
        results = json.load(f)["results"]
    at20 = {r["model"]: next(t["top1"] for t in r["top1"] if t["k"] == 20) for r in results}
    return 100 * at20.get("trained", float("nan")), 100 * at20.get("random init", float("nan"))


def main(args):
    if not args:
        sys.exit(__doc__)
    print("| data | candidate | effective rank | collapse | probe k-NN | |")
    print("|---|---|---|---|---|---|")
    summaries, pooled_rank, pooled_knn, centred_rank, centred_knn = [], [], [], [], []
    for arg in args:
        label, run = arg.split("=", 1)
        with open(os.path.join(run, "recipe-choice.json")) as f:
            choice = json.load(f)
        probes = choice["probes"]
        rank = [p["effective_rank"] for p in probes]
        knn = [probe_knn(os.path.join(run, "probes", p["candidate"], "knn.txt")) for p in probes]
        for p, k in zip(probes, knn):
            mark = "chosen" if p["candidate"] == choice["chosen"] else ""
            print(
                f"| {label} | {p['candidate']} | {p['effective_rank']:.1f} | {p['collapse']} "
                f"| {k:.1f} % | {mark} |"
            )
        best = max(range(len(knn)), key=lambda i: knn[i])
        chosen = next(i for i, p in enumerate(probes) if p["candidate"] == choice["chosen"])
        trained, random = final_knn(run)
        summaries.append((label, spearman(rank, knn), chosen == best, knn[best] - knn[chosen],
                          trained, random, choice["chosen"]))
        pooled_rank += rank
        pooled_knn += knn
        centred_rank += [r - sum(rank) / len(rank) for r in rank]
        centred_knn += [k - sum(knn) / len(knn) for k in knn]
    print()
    print("| data | Spearman (rank, k-NN) | picked the best probe | k-NN lost to the best probe | chosen | final k-NN, trained / random |")
    print("|---|---|---|---|---|---|")
    for label, rho, hit, lost, trained, random, chosen in summaries:
        final = "—" if trained is None else f"{trained:.1f} % / {random:.1f} %"
        print(f"| {label} | {rho:+.2f} | {'yes' if hit else 'no'} | {lost:.1f} | {chosen} | {final} |")
    rhos = [s[1] for s in summaries if s[1] == s[1]]
    print()
    print(f"probes: {len(pooled_rank)} on {len(summaries)} datasets")
    print(f"mean within-dataset Spearman: {sum(rhos) / len(rhos):+.2f}")
    print(f"Spearman over all probes, dataset means removed: {spearman(centred_rank, centred_knn):+.2f}")
    print(f"Spearman over all probes, raw: {spearman(pooled_rank, pooled_knn):+.2f}")
    hits = sum(1 for s in summaries if s[2])
    print(f"choice picked the best probe on {hits} of {len(summaries)} datasets")


if __name__ == "__main__":
    main(sys.argv[1:])
