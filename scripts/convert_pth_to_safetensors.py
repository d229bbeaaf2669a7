#!/usr/bin/env python3
"""Convert an official SwAV (or torchvision) PyTorch checkpoint to safetensors for `swav import`.

    python scripts/convert_pth_to_safetensors.py swav_800ep_pretrain.pth.tar swav_800ep.safetensors

Accepts a flat state dict (the released `swav_*_pretrain.pth.tar` files, keys prefixed
`module.`), a training checkpoint with a `state_dict` entry (`checkpoint.pth.tar`), or a
torchvision `state_dict`. Keys are kept as they are (`swav import` strips `module.` and ignores
`fc.*`); non-tensor entries are dropped. Needs `torch` and `safetensors`.
"""

import sys

import torch
from safetensors.torch import save_file


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    source, target = sys.argv[1], sys.argv[2]
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    tensors = {k: v.detach().contiguous() for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        sys.exit(f"{source}: no tensors found")
    save_file(tensors, target)
    print(f"wrote {target}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
