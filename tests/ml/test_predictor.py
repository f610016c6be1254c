"""Bundles load in every runtime with the same answers; the predict CLI keeps its contract."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml import bundle as bundles
from ml.predictor import BundleError, Predictor
from testsupport.ml_samples import encode, pattern, photo

ROOT = Path(__file__).resolve().parents[2]


def test_bundle_has_every_part_and_a_content_version(tiny_bundle):
    info = bundles.read(tiny_bundle)
    for name in bundles.FILES:
        assert (tiny_bundle / name).is_file()
    assert info.labels == ["Alpha_Gate", "Beta_Tower", "Gamma_Bridge"] and info.background
    assert info.preprocess["size"] == 32 and info.version.startswith("tiny-")
    changed = bundles.update(tiny_bundle, rejection={"method": "max_prob", "threshold": 0.3})
    assert changed.version != info.version  # a new threshold is a new version
    back = bundles.update(tiny_bundle, rejection={"method": "max_prob", "threshold": 0.2})
    assert back.version == info.version


def test_runtimes_agree(tiny_bundle):
    images = [pattern(i % 2, seed=i) for i in range(7)]
    results = {rt: Predictor(tiny_bundle, runtime=rt).predict(images) for rt in ("litert", "tensorflow", "keras")}
    for rt in ("tensorflow", "keras"):
        for a, b in zip(results["litert"], results[rt], strict=False):
            assert a.top5[0][0] == b.top5[0][0]
            assert a.score == pytest.approx(b.score, abs=1e-4)
            assert np.allclose(a.embedding, b.embedding, atol=1e-4)


JAX_PREDICT = """
import json, sys
from ml.predictor import Predictor
from testsupport.ml_samples import pattern
p = Predictor(sys.argv[1], runtime="jax", max_batch=4)
preds = p.predict([pattern(i % 2, seed=i) for i in range(7)])  # 4 + 3: the second batch is padded
print(json.dumps([[x.top5[0][0], x.score, x.embedding.tolist()] for x in preds]))
"""


def test_jax_runtime_agrees_with_litert(tiny_bundle):
    """Keras on its JAX backend (GPU hosts without TensorFlow) gives LiteRT's answers, padded batches too."""
    env = {"PATH": "/usr/bin:/bin", "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": f"{ROOT}:{ROOT / 'tests' / 'ml'}"}
    out = subprocess.run([sys.executable, "-c", JAX_PREDICT, str(tiny_bundle)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    jax_preds = json.loads(out.stdout.strip().splitlines()[-1])
    litert = Predictor(tiny_bundle, runtime="litert").predict([pattern(i % 2, seed=i) for i in range(7)])
    assert len(jax_preds) == 7
    for ours, (label, score, embedding) in zip(litert, jax_preds, strict=False):
        assert ours.top5[0][0] == label
        assert ours.score == pytest.approx(score, abs=1e-4)
        assert np.allclose(ours.embedding, embedding, atol=1e-4)


def test_jax_runtime_refuses_a_process_on_another_keras_backend(tiny_bundle):
    import keras  # noqa: F401  (this test process runs Keras on TensorFlow)

    with pytest.raises(BundleError, match="KERAS_BACKEND=jax"):
        Predictor(tiny_bundle, runtime="jax")


def test_predictions_are_well_formed(tiny_bundle):
    p = Predictor(tiny_bundle, runtime="litert", max_batch=4)
    preds = p.predict([pattern(0, seed=i) for i in range(9)])  # crosses batch boundaries
    assert len(preds) == 9
    for pred in preds:
        assert len(pred.top5) == 3 and pred.top5 == sorted(pred.top5, key=lambda kv: -kv[1])
        assert pred.score == pred.top5[0][1]
        assert pred.label == (pred.top5[0][0] if pred.score >= 0.2 else None)
        assert np.linalg.norm(pred.embedding) == pytest.approx(1.0, abs=1e-3)
        assert set(pred.to_json()) == {"label", "tier", "score", "suggestions", "top5"}
        assert pred.tier in ("sure", "unknown")  # a bundle without tiers: its one threshold
        assert pred.to_json()["label"] == (pred.label if pred.tier == "sure" else None)


def test_rejection_threshold_rejects(tiny_bundle, tmp_path):
    strict = tmp_path / "strict"
    bundles.make_tiny_bundle(strict, ["A", "B"], threshold=1.01)
    assert all(p.label is None and len(p.top5) == 2 for p in Predictor(strict).predict([photo(1), photo(2)]))


def test_missing_bundle_is_a_bundle_error(tmp_path):
    with pytest.raises(BundleError, match="not a model bundle"):
        Predictor(tmp_path)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "ml", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_predict_cli_contract(tiny_bundle, tmp_path):
    good = tmp_path / "good.png"
    pattern(1, seed=3).save(good)
    fake = tmp_path / "fake.jpg"
    fake.write_text("just text")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(encode(photo(size=(300, 200)))[:500])
    files = [str(good), str(fake), str(empty), str(cut), str(tmp_path / "missing.jpg"), str(good)]
    result = run_cli("predict", "--bundle", str(tiny_bundle), *files)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["file"] for r in rows] == files
    assert set(rows[0]) == {"file", "label", "tier", "score", "suggestions", "top5"} and rows[0] == rows[5]
    assert all(len(pair) == 2 for pair in rows[0]["top5"])
    assert "not an image" in rows[1]["error"] and "empty" in rows[2]["error"]
    assert "damaged" in rows[3]["error"] and "could not be read" in rows[4]["error"]


def test_predict_cli_fails_only_when_the_bundle_cannot_load(tmp_path):
    result = run_cli("predict", "--bundle", str(tmp_path), str(tmp_path / "x.jpg"))
    assert result.returncode == 2 and "not a model bundle" in result.stderr


@pytest.fixture(scope="module")
def fast_bundle(tiny_bundle, tmp_path_factory) -> Path:
    """The tiny bundle with an int8 fast path (ml.fastpath), calibrated on stripe photos."""
    import shutil

    from ml import quantize
    from ml.images import to_array

    path = tmp_path_factory.mktemp("fast") / "tiny"
    shutil.copytree(tiny_bundle, path)
    quantize.add(path, np.stack([to_array(pattern(i % 2, seed=100 + i), 32).astype(np.uint8) for i in range(32)]))
    return path


def test_fast_path_keeps_the_version_and_sends_only_unclear_photos_to_the_float_model(fast_bundle, tiny_bundle):
    from ml.fastpath import unclear

    assert bundles.read(fast_bundle).version == bundles.read(tiny_bundle).version  # it names the float model
    exact, fast = Predictor(fast_bundle, runtime="litert", fast_path=False), Predictor(fast_bundle, runtime="litert")
    assert exact.fast_path is None and fast.fast_path == {"margin": 0.2, "floor": 0.1}  # floor: threshold / 2
    batch = exact.preprocess([pattern(i % 2, seed=i) for i in range(24)])
    float_probs, float_emb = exact.predict_arrays(batch)
    int8_probs, int8_emb = fast.fast_arrays(batch)
    assert not np.allclose(int8_emb, float_emb, atol=1e-6)  # really another model
    for margin in (0.0, 0.05, 0.2, 1.01):
        rule = dict(bundles.read(fast_bundle).extra["fast_path"], margin=margin, floor=0.0)
        bundles.update(fast_bundle, fast_path=rule)
        fast = Predictor(fast_bundle, runtime="litert")
        redo = unclear(int8_probs, len(fast.labels), **fast.fast_path)
        probs, emb = fast.predict_arrays(batch)
        assert np.allclose(probs[redo], float_probs[redo]) and np.allclose(emb[redo], float_emb[redo])
        assert np.allclose(probs[~redo], int8_probs[~redo]) and np.allclose(emb[~redo], int8_emb[~redo])
        assert np.allclose(fast.predict_arrays(batch, exact=True)[1], float_emb)  # stored signatures: float
    assert redo.all() and [p.label for p in fast.predict_batch(batch)] == [p.label for p in exact.predict_batch(batch)]


def test_a_missing_fast_path_model_is_a_clear_bundle_error(fast_bundle, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(fast_bundle, broken)
    (broken / "model.int8.tflite").unlink()
    with pytest.raises(BundleError, match="model.int8.tflite"):
        Predictor(broken, runtime="litert")
    assert Predictor(broken, runtime="litert", fast_path=False).fast_path is None
