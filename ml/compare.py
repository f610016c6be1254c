"""``python -m ml compare``: train the six architectures on one split and write the study's comparison table.

Every architecture is trained by ``ml.train.run`` with the same data, seed and split fractions, so all
of them see exactly the same train/val/test photos. Then, for each trained model: parameters, FLOPs per
image (counted from the layer shapes), training time, Keras inference throughput at batch 32, and
top-1/top-5 on the test split. The results replace the marked section of ``docs/architectures.md``
(as do the generated layer tables), and are kept in ``<out>/compare.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ARCHS = ["lenet5", "alexnet", "vgg16", "bknet", "mobilenetv2", "efficientnet_lite0"]
TRANSFER = {"mobilenetv2", "efficientnet_lite0"}
WEIGHT_FILES = {"mobilenetv2": "mobilenet_v2_1.0_224_no_top.weights.h5",
                "efficientnet_lite0": "efficientnet_lite0.keras"}

# Per-architecture TrainConfig fields for each budget. "cpu" fits the whole comparison in about
# 40 minutes on 2 CPU cores; "full" is the study's input sizes with a GPU-sized schedule.
BUDGETS = {
    "ci": {
        "*": dict(epochs=1, head_epochs=1, fine_tune_epochs=1, views=1, max_per_class=8, patience=1),
        "lenet5": dict(img_size=32), "alexnet": dict(img_size=64), "vgg16": dict(img_size=32),
        "bknet": dict(img_size=32), "mobilenetv2": dict(img_size=96), "efficientnet_lite0": dict(img_size=224),
    },
    "cpu": {
        "*": dict(patience=99),  # no early stopping: the short cosine schedule runs to its end
        "lenet5": dict(img_size=128, epochs=10),
        "alexnet": dict(img_size=96, epochs=5),
        "vgg16": dict(img_size=32, epochs=2),
        "bknet": dict(img_size=112, epochs=12),
        "mobilenetv2": dict(img_size=224, views=2, head_epochs=4, fine_tune_epochs=5),
        "efficientnet_lite0": dict(img_size=224, views=2, head_epochs=4, fine_tune_epochs=5),
    },
    "full": {
        "*": dict(epochs=80, patience=12, views=4, head_epochs=6, fine_tune_epochs=10),
        "lenet5": dict(img_size=128), "alexnet": dict(img_size=227), "vgg16": dict(img_size=224),
        "bknet": dict(img_size=160), "mobilenetv2": dict(img_size=224), "efficientnet_lite0": dict(img_size=224),
    },
}
DOC_BEGIN, DOC_END = "<!-- compare:results:begin -->", "<!-- compare:results:end -->"
TABLES_BEGIN, TABLES_END = "<!-- compare:tables:begin -->", "<!-- compare:tables:end -->"


@dataclass
class Row:
    arch: str
    params: int
    flops: int  # per image, 2 × multiply-accumulates of the conv and dense layers
    train_seconds: float
    images_per_s: float
    top1: float
    top5: float
    settings: dict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder-per-class dataset")
    parser.add_argument("--negatives",
                        help="accepted for symmetry with train; the comparison trains without a background class")
    parser.add_argument("--out", default="runs/compare", help="runs folder (one sub-folder per architecture)")
    parser.add_argument("--doc", default="docs/architectures.md",
                        help="markdown file whose results section is rewritten")
    parser.add_argument("--weights-dir",
                        help="folder with the offline ImageNet files (else Keras downloads MobileNetV2)")
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="cpu")
    parser.add_argument("--archs", nargs="+", choices=ARCHS, default=ARCHS, metavar="ARCH",
                        help=f"subset of: {' '.join(ARCHS)}")
    parser.add_argument("--set", nargs="+", default=[], metavar="ARCH.FIELD=VALUE", dest="overrides",
                        help="override a TrainConfig field for one architecture, "
                             "e.g. vgg16.img_size=48 bknet.epochs=40")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--remeasure", action="store_true",
                        help="no training: re-measure images/s of the models already in OUT (best on a quiet machine)")


def main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = budget_settings(args.budget, args.archs, args.overrides)
    results_file = out / "compare.json"
    rows = {r["arch"]: Row(**r) for r in json.loads(results_file.read_text())["rows"]} if results_file.exists() else {}
    write_layer_tables(args.doc)
    if args.remeasure:
        return remeasure(args, out, rows)
    for name in args.archs:
        print(f"\n=== {name}: {settings[name]}", flush=True)
        rows[name] = train_and_measure(name, args, settings[name], out / name)
        ordered = [rows[a] for a in ARCHS if a in rows]
        meta = {"budget": args.budget, "data": args.data, "seed": args.seed, "machine": machine()}
        results_file.write_text(json.dumps({**meta, "rows": [asdict(r) for r in ordered]}, indent=1))
        write_results(args.doc, ordered, meta)
        print(f"{name}: top-1 {rows[name].top1:.1%}, top-5 {rows[name].top5:.1%}, "
              f"{rows[name].train_seconds:.0f} s", flush=True)
    return 0


def remeasure(args, out: Path, rows: dict[str, Row]) -> int:
    import keras

    for name, row in rows.items():
        model = keras.models.load_model(out / name / "model.keras", compile=False)
        row.images_per_s = round(throughput(model, row.settings["img_size"]), 1)
        row.settings["load_avg"] = round(os.getloadavg()[0], 1)
        print(f"{name}: {row.images_per_s:.0f} images/s", flush=True)
    data = json.loads((out / "compare.json").read_text())
    data["rows"] = [asdict(rows[a]) for a in ARCHS if a in rows]
    (out / "compare.json").write_text(json.dumps(data, indent=1))
    write_results(args.doc, [rows[a] for a in ARCHS if a in rows], data)
    return 0


def budget_settings(budget: str, archs: list[str], overrides: list[str]) -> dict[str, dict]:
    preset = BUDGETS[budget]
    settings: dict[str, dict[str, Any]] = {a: {**preset.get("*", {}), **preset.get(a, {})} for a in archs}
    for item in overrides:
        try:
            key, value = item.split("=", 1)
            arch, field = key.split(".", 1)
        except ValueError:
            raise SystemExit(f"--set expects ARCH.FIELD=VALUE, got {item!r}") from None
        if arch in settings:
            settings[arch][field] = int(value) if value.isdigit() else float(value)
    return settings


def train_and_measure(name: str, args, settings: dict, out: Path) -> Row:
    from ml.train import TrainConfig, run

    cfg = TrainConfig(data=args.data, arch=name, out=str(out), weights=_weights(name, args.weights_dir),
                      seed=args.seed, **settings)
    result = run(cfg)
    arch = result.arch
    top1, top5 = evaluate(arch, result.split.test)
    used: dict[str, Any] = {"img_size": arch.img_size, "batch_size": cfg.batch_size}
    if name in TRANSFER:
        used.update(views=cfg.views, head_epochs=_ran(result.history, "head"),
                    fine_tune_epochs=_ran(result.history, "fine_tune"),
                    planned=f"{cfg.head_epochs}+{cfg.fine_tune_epochs}", lr=cfg.lr, fine_tune_lr=cfg.fine_tune_lr)
    else:
        used.update(epochs=_ran(result.history, "scratch"), planned=cfg.epochs, lr=cfg.lr, patience=cfg.patience)
    if cfg.max_per_class:
        used["max_per_class"] = cfg.max_per_class
    used["load_avg"] = round(os.getloadavg()[0], 1)  # other jobs on the machine skew the timings
    used["photos"] = {"train": len(result.split.train), "val": len(result.split.val), "test": len(result.split.test)}
    return Row(name, arch.model.count_params(), count_flops(arch.model), round(result.seconds, 1),
               round(throughput(arch.model, arch.img_size), 1), top1, top5, used)


def _weights(name: str, weights_dir: str | None) -> str | None:
    if name not in TRANSFER:
        return None
    if weights_dir:
        path = Path(weights_dir) / WEIGHT_FILES[name]
        if not path.exists():
            raise SystemExit(f"{name}: {path} not found")
        return str(path)
    return "imagenet"  # MobileNetV2 downloads; EfficientNet-Lite0 raises a clear error (it needs the file)


def _ran(history: dict, phase: str) -> int:
    return len(next(iter(history.get(phase, {"": []}).values()), []))


def evaluate(arch, samples) -> tuple[float, float]:
    """Top-1 and top-5 accuracy of ``arch`` on ``samples`` (whole photos, no augmentation)."""
    from ml.pipeline import load_arrays

    x = (load_arrays(samples, arch.img_size).astype(np.float32) - arch.mean) / arch.std
    probs = arch.model.predict(x, batch_size=32, verbose=0)
    labels = np.array([s.label for s in samples])
    top5 = np.argsort(-probs, axis=1)[:, :5]
    return float(np.mean(top5[:, 0] == labels)), float(np.mean((top5 == labels[:, None]).any(axis=1)))


def throughput(model, img_size: int, batches: int = 8) -> float:
    """Images per second of Keras ``model.predict`` at batch 32 (after one warm-up call)."""
    x = np.random.default_rng(0).normal(size=(32 * batches, img_size, img_size, 3)).astype(np.float32)
    model.jit_compile = False  # Keras' "auto" means XLA, which is several times slower on CPU
    model.predict(x[:32], batch_size=32, verbose=0)
    started = time.perf_counter()
    model.predict(x, batch_size=32, verbose=0)
    return len(x) / (time.perf_counter() - started)


def count_flops(model) -> int:
    """FLOPs for one image: 2 × multiply-accumulates of every convolution and dense layer (nested models too).

    Batch norm, activations, pooling and additions are left out, as in the usual tables (< 2 % here).
    """
    import keras
    from keras import layers

    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            macs += count_flops(layer) // 2
            continue
        if not layer._inbound_nodes:
            continue
        node = layer._inbound_nodes[0]
        if not node.input_tensors:  # the input layer
            continue
        cin = node.input_tensors[0].shape[-1]
        out = node.output_tensors[0].shape
        positions = int(np.prod(out[1:-1])) if len(out) > 2 else 1
        if isinstance(layer, layers.SeparableConv2D):
            kh, kw = layer.kernel_size
            macs += positions * cin * layer.depth_multiplier * (kh * kw + out[-1])
        elif isinstance(layer, layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            macs += positions * cin * layer.depth_multiplier * kh * kw
        elif isinstance(layer, layers.Conv2D):
            kh, kw = layer.kernel_size
            macs += positions * out[-1] * kh * kw * cin // layer.groups
        elif isinstance(layer, layers.Dense):
            macs += positions * cin * out[-1]
    return 2 * macs


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, TensorFlow CPU"


# ----------------------------------------------------------------------------------------------- doc


def layer_table(model) -> str:
    """Markdown table of a model, one row per named group of layers (conv + its BN + ReLU, a block, …)."""
    groups: dict[str, dict] = {}
    for layer in model.layers:
        key = layer.name.split("_")[0]
        if key in ("embedding",):
            continue
        g = groups.setdefault(key, {"types": [], "params": 0, "shape": None})
        kind = type(layer).__name__
        if kind not in g["types"]:
            g["types"].append(kind)
        g["params"] += layer.count_params()
        g["shape"] = layer._inbound_nodes[0].output_tensors[0].shape if layer._inbound_nodes else layer.output.shape
    lines = ["| layer | made of | output | parameters |", "|---|---|---|---:|"]
    for key, g in groups.items():
        shape = "×".join(str(d) for d in g["shape"][1:])
        lines.append(f"| {key} | {' + '.join(_short(t) for t in g['types'])} | {shape} | {g['params']:,} |")
    lines.append(f"| **total** | | | **{model.count_params():,}** |")
    return "\n".join(lines)


def _short(kind: str) -> str:
    return {"BatchNormalization": "BN", "SeparableConv2D": "SepConv3×3", "GlobalAveragePooling2D": "GAP",
            "MaxPooling2D": "MaxPool", "InputLayer": "Input"}.get(kind, kind)


def write_layer_tables(doc: str, num_classes: int = 20) -> None:
    """Regenerate the layer tables of the four study networks at their default (the study's) input sizes."""
    from ml import architectures

    parts = []
    for name in ("lenet5", "alexnet", "vgg16", "bknet"):
        size = architectures.default_size(name)
        model = architectures.build(name, num_classes, size).model
        parts.append(f"### {name} ({size}×{size}×3 input, {num_classes} classes)\n\n"
                     f"{layer_table(model)}\n\nFLOPs per image: {count_flops(model) / 1e9:.2f} G")
    _replace_section(doc, TABLES_BEGIN, TABLES_END, "\n\n".join(parts))


def write_results(doc: str, rows: list[Row], meta: dict) -> None:
    from ml.train import FINE_TUNE_FROM

    lines = [
        f"Budget `{meta['budget']}`, seed {meta['seed']}, data `{meta['data']}`, measured on {meta['machine']}. "
        "Same group-aware 70/30 split for every network (validation carved from the 70 %); "
        "test = the 30 %, whole photos, no test-time augmentation.",
        "",
        "| network | parameters | GFLOPs / image | input | training time | inference img/s (Keras, batch 32) "
        "| test top-1 | test top-5 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r.arch} | {r.params / 1e6:.2f} M | {r.flops / 1e9:.3f} | {r.settings['img_size']} px "
                     f"| {_duration(r.train_seconds)} | {r.images_per_s:.0f} | {r.top1:.1%} | {r.top5:.1%} |")
    lines += ["", "Exact settings (epochs run, planned in brackets; AdamW, label smoothing 0.1, "
              "the augmentation of `ml.pipeline`):", ""]
    for r in rows:
        s = r.settings
        if r.arch in TRANSFER:
            what = (f"ImageNet weights, {s['views']} cached augmented view(s) per photo, head {s['head_epochs']} + "
                    f"fine-tune {s['fine_tune_epochs']} epochs ({s['planned']}) of the layers after "
                    f"`{FINE_TUNE_FROM[r.arch]}`, lr {s['lr']} / {s['fine_tune_lr']} cosine")
        else:
            what = f"from scratch, {s['epochs']} epochs ({s['planned']}), lr {s['lr']} cosine, batch-norm momentum 0.9"
        extra = f", at most {s['max_per_class']} photos per class" if "max_per_class" in s else ""
        load = f"; machine load average {s['load_avg']} when measured" if "load_avg" in s else ""
        lines.append(f"- **{r.arch}**: {s['img_size']} px, batch {s['batch_size']}, {what}{extra}; "
                     f"photos train/val/test {s['photos']['train']}/{s['photos']['val']}/{s['photos']['test']}{load}.")
    _replace_section(doc, DOC_BEGIN, DOC_END, "\n".join(lines))


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _replace_section(doc: str, begin: str, end: str, body: str) -> None:
    path = Path(doc)
    text = (path.read_text() if path.exists()
            else f"# Architectures\n\n{TABLES_BEGIN}\n{TABLES_END}\n\n{DOC_BEGIN}\n{DOC_END}\n")
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    path.write_text(f"{head}{begin}\n{body}\n{end}{tail}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m ml.compare", description=__doc__.splitlines()[0])
    add_arguments(parser)
    raise SystemExit(main(parser.parse_args()))
