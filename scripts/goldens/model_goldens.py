#!/usr/bin/env python3
"""PyTorch reference outputs for the swav-nn model (the "goldens").

Run with the project's Python environment (numpy, torch, torchvision):

    /work/pyenv/bin/python scripts/goldens/model_goldens.py

It writes small safetensors files into crates/swav-nn/goldens/, which swav-nn's
conformance checks compare every backend against (tests never need Python):

* resnet18_64px.safetensors   torchvision resnet18, batch 2 at 64 px, eval and train mode
* resnet50_64px.safetensors   torchvision resnet50, batch 2 at 64 px, eval and train mode
* swav_resnet18_small_stem.safetensors
                              the SwAV network (resnet18 trunk with the small-image stem,
                              projection head, L2 normalisation, prototypes), multi-crop
                              forward with two resolution groups, eval and train mode
* state_dict_keys.json        key names and shapes of torchvision resnet18/34/50 and of the
                              SwAV head, in state_dict order

No weights are stored. Every tensor is generated on both sides from a counter-based hash
(SplitMix64's output function of `stream << 40 | index`, 24 bits, uniform in [-1, 1)), the
stream being the FNV-1a hash of the tensor's state_dict key; swav-nn implements the same
formula (`swav_nn::hashed_uniform`). What is stored: outputs (pooled features, embeddings,
scores), full input gradients, and per-tensor checksums of the weight gradients and of the
updated running statistics (sum, L1, L2, max |x|, and 8 sampled entries with their
indices).

The reference values are PyTorch's in float64 (stored as float32), with PyTorch float32's own
error per tensor as the noise floor a float32 implementation is measured against (see
`choose_stream`).
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

OUT_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "swav-nn", "goldens")

# Streams of the generated tensors that are not weights.
INPUT_STREAM = 0xA00000  # + group index
COTANGENT_STREAM = 0xB00000  # the gradient fed to the output
SAMPLES = 8


# ----- the shared formula -----------------------------------------------------------------

def mix64(x):
    """SplitMix64's output function on a uint64 array (wrapping arithmetic)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hashed_uniform(stream, n):
    """n float32 values in [-1, 1): 24 hash bits of (stream << 40 | index)."""
    idx = np.arange(n, dtype=np.uint64)
    bits = mix64((np.uint64(stream) << np.uint64(40)) | idx) >> np.uint64(40)
    return bits.astype(np.float32) * np.float32(2.0 / 16777216.0) - np.float32(1.0)


def fnv1a24(name):
    """The stream of a tensor: FNV-1a (64 bit) of its key, low 24 bits."""
    h = 0xCBF29CE484222325
    for byte in name.encode():
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h & 0xFFFFFF


def formula(name, shape):
    """The value of state-dict tensor `name` (PyTorch layout), as float32."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = hashed_uniform(fnv1a24(name), n)
    if name.endswith("running_mean"):
        v = np.float32(0.1) * u
    elif name.endswith("running_var"):
        v = np.float32(1.25) + np.float32(0.25) * u
    elif name.endswith("bias"):
        v = np.float32(0.1) * u
    elif len(shape) == 4:
        fan_out = shape[0] * shape[2] * shape[3]
        v = u * np.float32(math.sqrt(3.0) * math.sqrt(2.0 / fan_out))
    elif len(shape) == 2:
        v = u * np.float32(1.0 / math.sqrt(shape[1]))
    elif name.endswith("bn3.weight"):
        # The last γ of a bottleneck's residual branch: small, so that the 16 blocks stay
        # well-conditioned in float32 (with γ ≈ 1, training-mode gradients of ResNet-50 on
        # a batch of two differ between float32 and float64 by several percent).
        v = np.float32(0.2) + np.float32(0.05) * u
    else:  # batch-norm weight
        v = np.float32(1.0) + np.float32(0.25) * u
    return v.reshape(shape)


def set_formula_weights(model):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.zero_()
            else:
                t.copy_(torch.from_numpy(formula(name, tuple(t.shape))))


def checksum(name, array):
    """[sum, L1, L2, max|x|, 8 samples] and the sample indices (flat, PyTorch layout)."""
    flat = np.asarray(array, dtype=np.float64).reshape(-1)
    n = flat.size
    idx = (mix64(np.uint64(fnv1a24(name)) * np.uint64(16) + np.arange(SAMPLES, dtype=np.uint64))
           % np.uint64(n)).astype(np.int64)
    stats = [flat.sum(), np.abs(flat).sum(), math.sqrt((flat * flat).sum()), np.abs(flat).max()]
    return np.array(stats + list(flat[idx]), dtype=np.float32), idx


# ----- safetensors, written by hand (no extra package) -------------------------------------

def save_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[array.dtype]
        data = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for data in blobs:
            f.write(data)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


# ----- models ------------------------------------------------------------------------------

def trunk(arch, small_stem=False):
    model = getattr(torchvision.models, arch)(weights=None)
    if small_stem:
        width = model.conv1.out_channels
        model.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    model.fc = nn.Identity()  # forward() now returns the pooled features
    return model


class SwavNet(nn.Module):
    """The official SwAV network's structure and multi-crop forward, on a torchvision trunk:
    consecutive crops of equal size go through the trunk together, the head runs once on all
    rows, then L2 normalisation and the bias-free prototypes."""

    def __init__(self, trunk_model, feature_dim, hidden, out_dim, prototypes):
        super().__init__()
        self.trunk = trunk_model
        self.projection_head = nn.Sequential(
            nn.Linear(feature_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, out_dim))
        self.prototypes = nn.Linear(out_dim, prototypes, bias=False)

    def forward(self, crops):
        sizes = torch.tensor([c.shape[-1] for c in crops])
        ends = torch.cumsum(torch.unique_consecutive(sizes, return_counts=True)[1], 0)
        features, start = [], 0
        for end in ends.tolist():
            features.append(self.trunk(torch.cat(crops[start:end])))
            start = end
        features = torch.cat(features)
        z = F.normalize(self.projection_head(features), dim=1, p=2)
        return features, z, self.prototypes(z)


def swav_state_dict_names(model):
    """SwAV keys: the trunk's without the `trunk.` prefix, the head's and prototypes' as is."""
    return {k.removeprefix("trunk."): v for k, v in model.state_dict().items()}


def set_swav_formula_weights(model):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            key = name.removeprefix("trunk.")
            if key.endswith("num_batches_tracked"):
                t.zero_()
            else:
                t.copy_(torch.from_numpy(formula(key, tuple(t.shape))))


def images(stream, n, size, dtype):
    x = hashed_uniform(stream, n * 3 * size * size).reshape(n, 3, size, size)
    return torch.from_numpy(x.copy()).to(dtype)


def f32(tensor):
    return tensor.detach().to(torch.float32).numpy()


# Float32 results of a deep batch-norm ResNet are ill-conditioned in training mode: a ReLU
# whose input sits within rounding of zero flips between two float32 implementations (or
# float32 and float64), and on a batch as small as these the gradients move by up to a few
# percent (ResNet-50 at 64 px: PyTorch float32 vs float64 differs by ~1e-3 to 1e-1 in the
# worst weight gradient, depending on the input). So the reference values are PyTorch's in
# float64, on the candidate input stream whose float32 run agrees best with it, and the file
# also stores, per compared tensor, PyTorch float32's own error ("noise/<key>", max |error|
# over max |value|): a faithful float32 implementation is held to max(tolerance, a small
# multiple of it).
CANDIDATE_STREAMS = 24
STREAM_STEP = 0x100


def disagreement(a, b):
    """Per key: max |a - b| / max |b| (0 where b is numerically zero)."""
    out = {}
    for key, vb in b.items():
        scale = np.abs(vb).max()
        out[key] = float(np.abs(a[key] - vb).max() / scale) if scale > 1e-5 else 0.0
    return out


def choose_stream(run, candidates):
    """The candidate input stream whose float32 run agrees best with its float64 run: the
    stream, the float64 tensors and PyTorch float32's error per tensor."""
    best = None
    for attempt in range(candidates):
        stream = INPUT_STREAM + attempt * STREAM_STEP
        exact = run(stream, torch.float64)
        noise = disagreement(run(stream, torch.float32), exact)
        worst = max(noise.values())
        print(f"  input stream {stream:#x}: float32 vs float64 {worst:.1e}", file=sys.stderr)
        if best is None or worst < best[0]:
            best = (worst, stream, exact, noise)
        if worst <= 1e-4:
            break
    return best[1:]


# ----- goldens -----------------------------------------------------------------------------

def trunk_run(arch, size, batch):
    def run(stream, dtype):
        model = trunk(arch)
        set_formula_weights(model)
        model = model.to(dtype)
        x = images(stream, batch, size, dtype)
        out = {}
        model.eval()
        with torch.no_grad():
            out["pooled_eval"] = f32(model(x))
        model.train()
        x.requires_grad_(True)
        pooled = model(x)
        cot = hashed_uniform(COTANGENT_STREAM, pooled.numel()).reshape(pooled.shape)
        (pooled * torch.from_numpy(cot).to(dtype)).sum().backward()
        out["pooled_train"] = f32(pooled)
        out["input_grad"] = f32(x.grad)
        for name, p in model.named_parameters():
            out[f"grad:{name}"] = f32(p.grad)
        for name, t in model.state_dict().items():
            if name.endswith("running_mean") or name.endswith("running_var"):
                out[f"running:{name}"] = f32(t)
        return out
    return run


def store(path, results, noise, metadata):
    tensors = {f"noise/{key.replace(':', '/')}": np.array([v], dtype=np.float32)
               for key, v in noise.items()}
    for key, value in results.items():
        if ":" in key:
            group, name = key.split(":", 1)
            values, idx = checksum(name, value)
            tensors[f"{group}/{name}"] = values
            tensors[f"{group}_index/{name}"] = idx
        else:
            tensors[key] = value
    save_safetensors(path, tensors, metadata)


def trunk_golden(arch, size, batch, path):
    print(f"{arch} at {size} px, batch {batch}", file=sys.stderr)
    stream, results, noise = choose_stream(trunk_run(arch, size, batch), CANDIDATE_STREAMS)
    store(path, results, noise,
          {"arch": arch, "size": size, "batch": batch, "input_stream": stream})


SWAV_GROUPS = [(2, 32), (2, 16)]


def swav_run(batch, hidden, out_dim, k):
    def run(stream, dtype):
        model = SwavNet(trunk("resnet18", small_stem=True), 512, hidden, out_dim, k)
        set_swav_formula_weights(model)
        model = model.to(dtype)
        with torch.no_grad():  # prototypes are unit rows in training
            model.prototypes.weight.copy_(F.normalize(model.prototypes.weight, dim=1, p=2))
        crops, inputs = [], []
        for g, (count, size) in enumerate(SWAV_GROUPS):
            x = images(stream + g, count * batch, size, dtype).requires_grad_(True)
            inputs.append(x)
            crops.extend(x[i * batch:(i + 1) * batch] for i in range(count))
        out = {}
        model.eval()  # first: the training pass updates the running statistics
        with torch.no_grad():
            features, z, scores = model(crops)
        out.update(features_eval=f32(features), embeddings_eval=f32(z), scores_eval=f32(scores))
        model.train()
        features, z, scores = model(crops)
        cot = hashed_uniform(COTANGENT_STREAM + 1, scores.numel()).reshape(scores.shape)
        (scores * torch.from_numpy(cot).to(dtype)).sum().backward()
        out.update(features=f32(features), embeddings=f32(z), scores=f32(scores))
        for g, x in enumerate(inputs):
            out[f"input_grad/{g}"] = f32(x.grad)
        for name, p in model.named_parameters():
            out[f"grad:{name.removeprefix('trunk.')}"] = f32(p.grad)
        for name, t in model.state_dict().items():
            if name.endswith("running_mean") or name.endswith("running_var"):
                out[f"running:{name.removeprefix('trunk.')}"] = f32(t)
        return out
    return run


def swav_golden(path):
    batch, hidden, out_dim, k = 2, 64, 16, 20
    print("swav network", file=sys.stderr)
    stream, results, noise = choose_stream(swav_run(batch, hidden, out_dim, k),
                                           CANDIDATE_STREAMS)
    meta = {"arch": "resnet18", "batch": batch, "groups": json.dumps(SWAV_GROUPS),
            "hidden": hidden, "output_dim": out_dim, "prototypes": k, "small_stem": 1,
            "input_stream": stream}
    store(path, results, noise, meta)


def key_listing(path):
    listing = {}
    for arch in ["resnet18", "resnet34", "resnet50"]:
        model = getattr(torchvision.models, arch)(weights=None)
        listing[arch] = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    head = SwavNet(trunk("resnet50"), 2048, 2048, 128, 3000)
    listing["swav_resnet50_head"] = [
        [k, list(v.shape)] for k, v in swav_state_dict_names(head).items()
        if k.startswith("projection_head") or k.startswith("prototypes")]
    with open(path, "w") as f:  # one key per line, so diffs stay readable
        f.write("{\n")
        for i, (name, entries) in enumerate(listing.items()):
            rows = ",\n".join(f"  {json.dumps(e)}" for e in entries)
            f.write(f"{json.dumps(name)}: [\n{rows}\n]" + (",\n" if i + 1 < len(listing) else "\n"))
        f.write("}\n")
    print(f"wrote {path}")


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    os.makedirs(OUT_DIR, exist_ok=True)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}", file=sys.stderr)
    trunk_golden("resnet18", 64, 2, os.path.join(OUT_DIR, "resnet18_64px.safetensors"))
    trunk_golden("resnet50", 64, 2, os.path.join(OUT_DIR, "resnet50_64px.safetensors"))
    swav_golden(os.path.join(OUT_DIR, "swav_resnet18_small_stem.safetensors"))
    key_listing(os.path.join(OUT_DIR, "state_dict_keys.json"))


if __name__ == "__main__":
    main()
