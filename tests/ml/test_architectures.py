"""Every registered architecture builds, exposes `embedding` and `probs`, and a tiny net trains end to end."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ml import architectures
from ml.compare import count_flops, layer_table
from ml.train import TrainConfig, run


@pytest.mark.parametrize("name", architectures.names())
def test_builds_for_three_classes_at_a_small_size(name):
    arch = architectures.build(name, 3, 32)
    model = arch.model
    assert arch.name == name and arch.img_size == 32 and arch.std > 0
    assert model.input_shape == (None, 32, 32, 3)
    assert model.get_layer("probs").output.shape[-1] == 3
    assert len(model.get_layer("embedding").output.shape) == 2  # a feature vector per image
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_study_networks_follow_their_tables():
    lenet = architectures.build("lenet5", 10, 32).model  # the classic 32×32 LeNet-5, RGB in
    assert lenet.get_layer("conv2").output.shape[1:] == (10, 10, 16)
    assert lenet.get_layer("fc1").kernel.shape == (400, 120)
    assert lenet.get_layer("fc2").kernel.shape == (120, 84)
    alexnet = architectures.build("alexnet", 10, 227).model
    assert alexnet.get_layer("conv1").output.shape[1:] == (55, 55, 96)
    assert alexnet.get_layer("fc2").kernel.shape == (4096, 4096)
    vgg = architectures.build("vgg16", 10, 64).model
    assert sum(1 for layer in vgg.layers if type(layer).__name__ == "Conv2D") == 13
    assert architectures.build("bknet", 20, 112).model.count_params() < 1_000_000


def test_flops_count_matches_hand_computation():
    # LeNet-5 at 32 px: conv1 28²·6·(5·5·3) + conv2 10²·16·(5·5·6) + 400·120 + 120·84 + 84·3 multiply-adds
    macs = 28 * 28 * 6 * 75 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 3
    model = architectures.build("lenet5", 3, 32).model
    assert count_flops(model) == 2 * macs
    assert "| conv1 | Conv2D + BN + ReLU | 28×28×6 |" in layer_table(model)


def _make_dataset(root, classes=3, per_class=8, size=40):
    """Noisy images tinted per class (noise keeps the near-duplicate grouping from merging them)."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class_{c}").mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 120, size=(size, size, 3))
            img[..., c] += 120
            Image.fromarray(img.astype(np.uint8)).save(root / f"class_{c}" / f"{i}.png")
    return root


def test_tiny_from_scratch_training_smoke(tmp_path):
    data = _make_dataset(tmp_path / "data")
    cfg = TrainConfig(data=str(data), arch="lenet5", out=str(tmp_path / "run"), img_size=32, epochs=1, batch_size=8)
    result = run(cfg)
    assert result.classes == ["class_0", "class_1", "class_2"]
    assert len(result.history["scratch"]["loss"]) == 1
    assert (tmp_path / "run" / "model.keras").exists()
    assert result.split.test and result.split.val
    probs = result.arch.model.predict(np.zeros((1, 32, 32, 3), np.float32), verbose=0)
    assert probs.shape == (1, 3)
