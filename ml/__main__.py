"""Command line: python -m ml {train,evaluate,compare,predict,bench} ..."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    from ml.predictor import RUNTIMES

    parser = argparse.ArgumentParser(prog="python -m ml", description="Landmark recognition: train, evaluate, serve.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train an architecture and write a bundle (exported, calibrated, evaluated)")
    t.add_argument("--data", required=True, nargs="+", action="extend",
                   help="folder-per-class dataset(s), or a folder of them; a class in several is one class")
    t.add_argument("--arch", required=True,
                   help="lenet5, alexnet, vgg16, bknet, mobilenetv2, efficientnet_lite0, efficientnet_lite2")
    t.add_argument("--out", required=True, help="bundle directory to write")
    t.add_argument("--negatives", help="non-landmark photos: trains a background class and calibrates rejection")
    t.add_argument("--outliers", help="landmarks that are not ours, folder per class (some kept unseen): "
                                      "join the background class and calibrate the answer tiers")
    t.add_argument("--stem-cache", help="frozen-stem feature cache shared by runs (default: in the work dir)")
    t.add_argument("--weights", help='pretrained weights: "imagenet" (download) or a local file')
    t.add_argument("--work-dir", help="checkpoints, TensorBoard logs and resume state (default: OUT.run)")
    t.add_argument("--name", help="bundle name used in the version id (default: the architecture)")
    t.add_argument("--epochs", type=int, default=30, help="from-scratch epochs")
    t.add_argument("--head-epochs", type=int, default=6, help="transfer phase 1 (frozen base) epochs")
    t.add_argument("--fine-tune-epochs", type=int, default=16, help="transfer phase 2 (top blocks) epochs")
    t.add_argument("--views", type=int, default=4, help="augmented views per photo (transfer)")
    t.add_argument("--max-views", type=int, default=16, help="views for the photos of the smallest classes")
    t.add_argument("--fine-tune-from", help="layer where the frozen part ends (default: the architecture's)")
    t.add_argument("--no-balance", action="store_true", help="no class weights (every photo weighs the same)")
    t.add_argument("--lr", type=float, default=1e-3, help="learning rate (from scratch; transfer phase 1)")
    t.add_argument("--fine-tune-lr", type=float, default=5e-5, help="transfer phase 2 peak learning rate")
    t.add_argument("--img-size", type=int)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--seed", type=int, default=1337)
    t.add_argument("--max-per-class", type=int)
    t.add_argument("--no-fast-path", action="store_true", help="no int8 fast path (ml/fastpath.py): float only")

    e = sub.add_parser("evaluate", help="metrics, plots and report of a bundle on its test split")
    e.add_argument("--bundle", required=True)
    e.add_argument("--data", required=True, nargs="+", action="extend")
    e.add_argument("--negatives")
    e.add_argument("--outliers", help="landmarks that are not ours (ml.data.split_outliers): how they end")
    e.add_argument("--runtime", default="litert", choices=RUNTIMES[1:])
    e.add_argument("--out", help="where metrics.json and the report go (default: the bundle)")

    p = sub.add_parser("predict", help="recognise photos; one JSON object per line, in input order")
    p.add_argument("files", nargs="+")
    p.add_argument("--bundle", help="bundle directory (default: the shipped model)")
    p.add_argument("--runtime", default="auto", choices=RUNTIMES)

    b = sub.add_parser("bench", help="latency and throughput per runtime, written to docs/performance.md")
    b.add_argument("--bundle")
    b.add_argument("--doc", default="docs/performance.md")
    b.add_argument("--seconds", type=float, default=8.0, help="time budget per measurement")
    b.add_argument("--runtimes", default="keras,tensorflow,litert", help="comma-separated, in table order")
    b.add_argument("--batch", type=int, default=32, help="the throughput column's batch size")

    from ml import compare

    f = sub.add_parser("fast-path", help="add an int8 fast path to a bundle (float model for unclear photos); compare")
    f.add_argument("--bundle", required=True)
    f.add_argument("--data", required=True, nargs="+", action="extend",
                   help="the bundle's dataset(s): calibration on its training photos")
    f.add_argument("--negatives")
    f.add_argument("--margin", type=float,
                   help="int8 top-2 gap under which the float model decides (default: ml.fastpath.MARGIN)")
    f.add_argument("--compare-only", action="store_true", help="only measure an existing fast path")

    compare.add_arguments(sub.add_parser("compare", help="train all architectures on one split; write the table"))

    args = parser.parse_args(argv)
    return {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "bench": cmd_bench, "compare": compare.main, "fast-path": cmd_fast_path}[args.command](args) or 0


def cmd_train(args) -> int:
    from ml.evaluate import evaluate
    from ml.train import TrainConfig, package, run

    cfg = TrainConfig(
        data=args.data, arch=args.arch, out=args.work_dir or f"{args.out.rstrip('/')}.run",
        negatives=args.negatives, outliers=args.outliers, stem_cache=args.stem_cache, weights=args.weights,
        epochs=args.epochs, head_epochs=args.head_epochs,
        fine_tune_epochs=args.fine_tune_epochs, views=args.views, max_views=args.max_views,
        balance=not args.no_balance, fine_tune_from=args.fine_tune_from, lr=args.lr, fine_tune_lr=args.fine_tune_lr,
        img_size=args.img_size, batch_size=args.batch_size, seed=args.seed, max_per_class=args.max_per_class,
    )
    result = run(cfg)
    info = package(result, cfg, args.out, name=args.name, fast_path=not args.no_fast_path)
    metrics = evaluate(args.out, args.data, negatives=args.negatives, outliers=args.outliers)
    print(f"bundle {info.version} written to {args.out}: top-1 {metrics['top1']:.2%}, top-5 {metrics['top5']:.2%}")
    return 0


def cmd_evaluate(args) -> int:
    from ml.evaluate import evaluate

    m = evaluate(args.bundle, args.data, negatives=args.negatives, outliers=args.outliers, runtime=args.runtime,
                 out=args.out)
    print(f"top-1 {m['top1']:.2%}  top-5 {m['top5']:.2%}  ECE {m['ece']:.3f}")
    if "rejection" in m:
        r = m["rejection"]
        print(f"threshold {r['threshold']:.3f}: negatives rejected {r['negatives_rejected']:.1%}, "
              f"landmarks accepted and correct {r['landmarks_accepted_correct']:.1%}")
    print(f"report: {Path(args.out or args.bundle) / 'report.md'}")
    return 0


def cmd_predict(args) -> int:
    from ml.predictor import BundleError, Predictor, predict_files

    try:
        predictor = Predictor(args.bundle, runtime=args.runtime)
    except BundleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for row in predict_files(predictor, args.files):
        print(json.dumps(row, ensure_ascii=False), flush=True)
    return 0


def cmd_fast_path(args) -> int:
    from ml.quantize import main as fast_path

    return fast_path(args)


def cmd_bench(args) -> int:
    from ml.bench import main as bench

    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
