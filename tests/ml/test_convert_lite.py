"""EfficientNet-Lite2 from a PyTorch state dict (ml.architectures.convert_lite), checked without torch.

The real weights were checked against the PyTorch model once, by hand (outputs within 3e-6); here a random
state dict of the same layout checks the graph, the exact weight copy and the padding of the convolutions.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest

from ml.architectures import convert_lite as cl


def _random_state(variant="lite2", seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in cl.layout(variant).items():
        if key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            state[key] = (0.2 * rng.standard_normal(shape)).astype(np.float32)
    return state


def test_lite2_layout_is_the_published_one():
    blocks = cl.blocks("lite2")
    stages = [b.name[5] for b in blocks]
    assert [stages.count(str(s)) for s in range(1, 8)] == [1, 3, 3, 4, 4, 5, 1]
    firsts = [b for b in blocks if b.name.endswith("a")]
    assert [b.cout for b in firsts] == [16, 24, 48, 88, 120, 208, 352]
    assert [b.kernel for b in firsts] == [3, 3, 5, 3, 5, 5, 3]
    assert [b.stride for b in firsts] == [1, 2, 2, 2, 1, 2, 1]
    assert [b.expand for b in firsts] == [1, 6, 6, 6, 6, 6, 6]
    assert firsts[0].cin == 32 and all(b.stride == 1 for b in blocks if not b.name.endswith("a"))
    layout = cl.layout("lite2")
    assert len(layout) == 322  # the float tensors of efficientnet-lite2-9656183e.pth
    assert sum(int(np.prod(s)) for s in layout.values()) == 6_150_168
    assert layout["_blocks.16._expand_conv.weight"] == (1248, 208, 1, 1)
    with pytest.raises(ValueError, match="not EfficientNet-lite2"):
        cl.check_layout(_random_state("lite0"), "lite2")


def test_random_state_dict_round_trips_exactly_through_the_command(tmp_path):
    state = _random_state()
    np.savez(tmp_path / "sd.npz", **state)
    cl.main(["--state-dict", str(tmp_path / "sd.npz"), "--out", str(tmp_path / "m.keras"), "--img-size", "64"])
    m = keras.models.load_model(tmp_path / "m.keras", compile=False)

    assert m.input_shape == (None, 64, 64, 3) and m.output_shape == (None, 1000)
    assert len(m.layers) == 188 and m.count_params() == 6_150_168
    assert m.get_layer("avg_pool").output.shape[-1] == 1280
    assert m.get_layer("predictions").get_config()["activation"] == "softmax"
    assert m.get_layer("block6d_add").output.shape[1:] == (2, 2, 208)  # the fine-tune cut
    assert sum(isinstance(layer, keras.layers.Add) for layer in m.layers) == 14
    assert [layer.name for layer in m.layers[-5:]] == [
        "top_conv", "top_bn", "top_activation", "avg_pool", "predictions"]

    np.testing.assert_array_equal(m.get_layer("stem_conv").kernel, state["_conv_stem.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(m.get_layer("block4b_dwconv").kernel,
                                  state["_blocks.8._depthwise_conv.weight"].transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(m.get_layer("block7a_project_conv").kernel,
                                  state["_blocks.20._project_conv.weight"][:, :, 0, 0].T[None, None])
    bn = m.get_layer("block6e_expand_bn")
    for w, key in zip(bn.weights, ("weight", "bias", "running_mean", "running_var"), strict=False):
        np.testing.assert_array_equal(w, state[f"_blocks.19._bn0.{key}"])
    assert bn.epsilon == 1e-3
    np.testing.assert_array_equal(m.get_layer("predictions").kernel, state["_fc.weight"].T)
    np.testing.assert_array_equal(m.get_layer("predictions").bias, state["_fc.bias"])
    # every tensor went somewhere: the model holds exactly the state dict's numbers
    assert sum(float(np.sum(np.asarray(w, np.float64))) for w in m.weights) == pytest.approx(
        sum(float(np.sum(v, dtype=np.float64)) for v in state.values()), rel=1e-9)


def _conv_same(x, w, stride, depthwise=False):
    """PyTorch's Conv2dStaticSamePadding in numpy: x NHWC, w OIHW (depthwise: C, 1, kh, kw)."""
    k = w.shape[-1]
    out = -(-x.shape[1] // stride)
    total = max((out - 1) * stride + k - x.shape[1], 0)
    xp = np.pad(x, ((0, 0), (total // 2, total - total // 2), (total // 2, total - total // 2), (0, 0)))
    y = 0.0
    for i in range(k):
        for j in range(k):
            patch = xp[:, i:i + stride * out:stride, j:j + stride * out:stride, :]
            y = y + (patch * w[:, 0, i, j] if depthwise else patch @ w[:, :, i, j].T)
    return y


def _bn(x, state, key):
    s = state
    return ((x - s[f"{key}.running_mean"]) / np.sqrt(s[f"{key}.running_var"] + 1e-3) * s[f"{key}.weight"]
            + s[f"{key}.bias"])


def test_stride_two_convolutions_pad_like_the_pytorch_model():
    # 36 px: the stem (36 -> 18) and block 2a's depthwise conv (18 -> 9) both pad 0 before, 1 after
    state = _random_state(seed=1)
    m = cl.convert(state, "lite2", img_size=36)
    x = np.random.default_rng(2).uniform(-1, 1, (2, 36, 36, 3)).astype(np.float32)
    got = keras.Model(m.input, [m.get_layer("stem_activation").output, m.get_layer("block2a_bn").output])(x)

    stem = np.clip(_bn(_conv_same(x, state["_conv_stem.weight"], 2), state, "_bn0"), 0, 6)
    b1 = np.clip(_bn(_conv_same(stem, state["_blocks.0._depthwise_conv.weight"], 1, True), state, "_blocks.0._bn1"),
                 0, 6)
    b1 = _bn(_conv_same(b1, state["_blocks.0._project_conv.weight"], 1), state, "_blocks.0._bn2")
    e = np.clip(_bn(_conv_same(b1, state["_blocks.1._expand_conv.weight"], 1), state, "_blocks.1._bn0"), 0, 6)
    dw = _bn(_conv_same(e, state["_blocks.1._depthwise_conv.weight"], 2, True), state, "_blocks.1._bn1")

    np.testing.assert_allclose(np.asarray(got[0]), stem, atol=1e-4)
    assert dw.shape == (2, 9, 9, 96)
    np.testing.assert_allclose(np.asarray(got[1]), dw, atol=1e-4, rtol=1e-4)
