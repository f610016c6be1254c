"""Training smoke tests on generated data: train → bundle → calibrate → evaluate, in seconds."""
import json

import pytest

from ml import bundle as bundles
from ml.__main__ import main as cli
from ml.data import Split
from ml.predictor import Predictor
from testsupport.ml_samples import pattern, scene


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
                "--fine-tune-epochs", "1", "--seed", "3"])
    assert code == 0
    info = bundles.read(out)
    assert info.labels == ["Alpha_Gate", "Beta_Tower"] and info.background
    # the int8 fast path, calibrated on the 8 training photos and 4 training negatives, after the threshold
    rule = info.extra["fast_path"]
    trained_on = len(Split.load(tmp_path / "bundle.run" / "split.json").train)
    assert (out / rule["file"]).is_file() and rule["calibration_photos"] == trained_on + 4
    assert rule["floor"] == round(info.rejection["threshold"] / 2, 4)
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
    lite, tf_ = (Predictor(out, runtime="litert", fast_path=False).predict(images),
                 Predictor(out, runtime="tensorflow").predict(images))
    assert [a.top5[0][0] for a in lite] == [b.top5[0][0] for b in tf_]
    assert max(abs(a.score - b.score) for a, b in zip(lite, tf_, strict=False)) < 1e-4


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
