"""Training smoke tests on generated data: train → bundle → calibrate → evaluate, in seconds."""
import json

import pytest

from ml import bundle as bundles
from ml.__main__ import main as cli
from ml.predictor import Predictor
from ml_samples import pattern, scene


@pytest.fixture
def negatives(tmp_path):
    folder = tmp_path / "negatives"
    folder.mkdir()
    for i in range(10):
        scene(1000 + i, size=48).save(folder / f"n{i}.jpg")
    return folder


def test_transfer_training_end_to_end_through_the_cli(tiny_dataset, negatives, tmp_path):
    out = tmp_path / "bundle"
    code = cli(["train", "--data", str(tiny_dataset), "--arch", "mobilenetv2", "--out", str(out),
                "--negatives", str(negatives), "--img-size", "32", "--views", "2", "--head-epochs", "1",
                "--fine-tune-epochs", "1", "--seed", "3", "--no-quantize"])
    assert code == 0
    info = bundles.read(out)
    assert info.labels == ["Alpha_Gate", "Beta_Tower"] and info.background and not info.extra["quantized"]
    assert 0.0 <= info.rejection["threshold"] <= 1.0 and info.rejection["calibration"]["negatives"] == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"top1", "top5", "ece", "per_class", "confusion", "rejection", "rejection_curve"} <= set(metrics)
    assert metrics["test_photos"] == sum(row for r in metrics["confusion"] for row in r)
    for name in ("report.md", "confusion.png", "rejection.png", "training.png", "history.json"):
        assert (out / name).is_file(), name
    # resumable work dir with checkpoints and TensorBoard logs
    work = tmp_path / "bundle.run"
    assert (work / "best-fine_tune.weights.h5").is_file() and any((work / "logs").rglob("events.out.*"))
    # the bundle serves the same answers in LiteRT and TensorFlow
    images = [pattern(i % 2, seed=50 + i) for i in range(6)]
    lite, tf_ = Predictor(out, runtime="litert").predict(images), Predictor(out, runtime="tensorflow").predict(images)
    assert [a.top5[0][0] for a in lite] == [b.top5[0][0] for b in tf_]
    assert max(abs(a.score - b.score) for a, b in zip(lite, tf_)) < 1e-4


def test_int8_export_is_smaller_and_still_a_classifier(tmp_path):
    import keras
    import numpy as np

    from ml.bundle import export

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    x = keras.layers.Dense(32, name="embedding")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probs")(x))
    samples = [np.random.default_rng(i).uniform(-1, 1, (1, 32, 32, 3)).astype("float32") for i in range(8)]
    kw = dict(labels=["a", "b", "c"], arch="t", preprocess={"size": 32, "mean": 127.5, "std": 127.5,
              "resize": "bilinear"}, background=False)
    f32, q8 = export(model, tmp_path / "f32", **kw), export(model, tmp_path / "q8", quantize_with=samples, **kw)
    assert q8.extra["quantized"] and q8.tflite.stat().st_size < f32.tflite.stat().st_size
    preds = Predictor(tmp_path / "q8", runtime="litert").predict([pattern(0, seed=1), pattern(1, seed=2)])
    assert all(abs(sum(p for _, p in pred.top5) - 1) < 0.05 for pred in preds)


def test_evaluate_cli_writes_report_elsewhere(tiny_dataset, tiny_bundle, tmp_path, capsys):
    # tiny_bundle's classes are not tiny_dataset's: evaluation keeps only the classes it knows
    out = tmp_path / "eval"
    assert cli(["evaluate", "--bundle", str(tiny_bundle), "--data", str(tiny_dataset), "--out", str(out)]) == 0
    assert "top-1" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text())["test_photos"] > 0


def test_unknown_architecture_is_a_clear_error():
    from ml import architectures

    with pytest.raises(ValueError, match="unknown architecture 'resnet9000'"):
        architectures.build("resnet9000", 3)
