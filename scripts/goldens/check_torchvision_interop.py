#!/usr/bin/env python3
"""Weights interoperability between swav-nn and PyTorch, end to end (not part of the tests:
it moves ~300 MB through a temporary directory).

    /work/pyenv/bin/python scripts/goldens/check_torchvision_interop.py

1. A torchvision resnet50 (random weights, non-trivial batch-norm statistics) is saved as a
   safetensors state dict, fc included.
2. swav-cpu's `weights_interop` example loads it (fc ignored, head kept), computes
   evaluation-mode pooled features, and exports the model twice: trunk only, and everything
   with the official checkpoints' `module.` prefix.
3. Here: the features must match torchvision's within 1e-5; the trunk export must load into
   torchvision's resnet50 (fc removed) with strict=True and reproduce the features; the full
   export must load strictly into the SwAV network (trunk + projection_head + prototypes).
"""

import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
import model_goldens as goldens  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header, base, out = json.loads(raw[8:8 + n]), 8 + n, {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = {"F32": np.float32, "I64": np.int64}[info["dtype"]]
        array = np.frombuffer(raw[base + start:base + end], dtype=dtype).reshape(info["shape"])
        out[key] = torch.from_numpy(array.copy())
    return out


def main():
    torch.manual_seed(3)
    source = torchvision.models.resnet50()
    with torch.no_grad():
        for module in source.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.8, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.1, 0.1)
    x = torch.from_numpy(goldens.hashed_uniform(7, 2 * 3 * 64 * 64).reshape(2, 3, 64, 64))
    with tempfile.TemporaryDirectory() as tmp:
        state = {k: v.numpy() for k, v in source.state_dict().items()}
        goldens.save_safetensors(os.path.join(tmp, "torchvision_resnet50.safetensors"), state,
                                 {"format": "pt"})
        subprocess.run(["cargo", "run", "--release", "-q", "-p", "swav-cpu", "--example",
                        "weights_interop", "--", tmp], cwd=ROOT, check=True)
        source.fc = torch.nn.Identity()
        source.eval()
        with torch.no_grad():
            reference = source(x).numpy()
        ours = np.fromfile(os.path.join(tmp, "features.f32"), dtype=np.float32).reshape(2, -1)
        error = np.abs(ours - reference).max() / np.abs(reference).max()
        print(f"features after import: max error {error:.1e} of the largest")
        assert error < 1e-5

        trunk = torchvision.models.resnet50()
        trunk.fc = torch.nn.Identity()
        print("trunk export into torchvision resnet50 (strict):",
              trunk.load_state_dict(read_safetensors(os.path.join(tmp, "trunk.safetensors")),
                                    strict=True))
        trunk.eval()
        with torch.no_grad():
            again = trunk(x).numpy()
        print(f"features after the round trip: max error "
              f"{np.abs(again - reference).max() / np.abs(reference).max():.1e}")
        assert np.abs(again - reference).max() <= 1e-6 * np.abs(reference).max()

        swav = goldens.SwavNet(goldens.trunk("resnet50"), 2048, 2048, 128, 3000)
        exported = read_safetensors(os.path.join(tmp, "swav.safetensors"))
        state = {}
        for key, value in exported.items():
            key = key.removeprefix("module.")
            is_head = key.startswith("projection_head") or key.startswith("prototypes")
            state[key if is_head else "trunk." + key] = value
        print("full export into the SwAV network (strict):",
              swav.load_state_dict(state, strict=True))
    print("ok")


if __name__ == "__main__":
    main()
