"""Reads a swav run's TensorBoard event file with TensorBoard's own reader (which checks
every record's masked CRC-32C) and compares its scalars with metrics.jsonl.

    pip install tensorboard
    python scripts/check_tensorboard_events.py RUN_DIR

Prints one line per tag and exits non-zero on any difference. Not needed by the tests (the
Rust unit tests pin the encoding); this is the cross-check against the real reader.
"""

import json
import math
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

run = Path(sys.argv[1])
events = EventAccumulator(str(run), size_guidance={"scalars": 0})
events.Reload()
records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
expected = {
    "train/loss": [(r["iteration"] + 1, r["loss"]) for r in records],
    "train/lr": [(r["iteration"] + 1, r["lr"]) for r in records],
    "codes/prototypes_in_use": [(r["iteration"] + 1, r["prototypes_in_use"]) for r in records],
}
failed = False
for tag, points in expected.items():
    got = [(e.step, e.value) for e in events.Scalars(tag)]
    same = len(got) == len(points) and all(
        s == t and math.isclose(v, w, rel_tol=1e-6, abs_tol=1e-7) for (s, v), (t, w) in zip(got, points)
    )
    failed |= not same
    print(f"{tag}: {len(got)} points, {'same as' if same else 'DIFFERENT from'} metrics.jsonl")
print(f"{len(events.Tags()['scalars'])} scalar tags in all")
sys.exit(1 if failed else 0)
