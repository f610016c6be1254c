"""ImageNet-pretrained backbones with a new head (two-phase transfer learning)."""
from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from ml.architectures import Architecture, register


def _head(inputs, features, num_classes: int, dropout: float = 0.2) -> keras.Model:
    embedding = layers.Identity(name="embedding")(features)
    x = layers.Dropout(dropout, name="head_dropout")(embedding)
    probs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, probs)


@register("mobilenetv2", default_size=224)
def mobilenetv2(num_classes: int, img_size: int, weights: str | None = None, **_) -> Architecture:
    """MobileNetV2 (alpha 1.0); ``weights``: "imagenet" (download), a local ``.weights.h5`` or None."""
    base = keras.applications.MobileNetV2(
        input_shape=(img_size, img_size, 3), include_top=False, pooling="avg", weights=weights
    )
    base.name = "backbone"
    inputs = keras.Input((img_size, img_size, 3), name="image")
    model = _head(inputs, base(inputs, training=False), num_classes)
    return Architecture("mobilenetv2", model, img_size, 127.5, 127.5, backbone=base)


@register("efficientnet_lite0", default_size=224)
def efficientnet_lite0(num_classes: int, img_size: int, weights: str | None = None, **_) -> Architecture:
    """EfficientNet-Lite0; ``weights`` must be a local full ``.keras`` model (Keras ships no Lite0)."""
    return _efficientnet_lite("efficientnet_lite0", num_classes, img_size, weights, lambda: _lite0_random(img_size),
                              "e.g. shared/models/efficientnet_lite0.keras")


@register("efficientnet_lite2", default_size=260)
def efficientnet_lite2(num_classes: int, img_size: int, weights: str | None = None, **_) -> Architecture:
    """EfficientNet-Lite2; ``weights`` must be a local full ``.keras`` model, made by ``ml.architectures.convert_lite``
    (e.g. runs/models/efficientnet_lite2.keras); None: the same graph, untrained."""
    def untrained() -> keras.Model:
        from ml.architectures.convert_lite import build

        return build("lite2", img_size, include_top=False, name="backbone")

    return _efficientnet_lite("efficientnet_lite2", num_classes, img_size, weights, untrained,
                              "python -m ml.architectures.convert_lite")


def _efficientnet_lite(name: str, num_classes: int, img_size: int, weights, untrained, hint: str) -> Architecture:
    """An EfficientNet-Lite backbone from a local full ``.keras`` model (its ``avg_pool`` features), or
    ``untrained()`` without weights, with a new head; inputs ``(x - 127) / 128``."""
    if weights and Path(str(weights)).suffix == ".keras":
        full = keras.models.load_model(weights, compile=False)
        if img_size != full.input_shape[1]:
            raise ValueError(f"{name} weights are for {full.input_shape[1]}px inputs")
        base = keras.Model(full.input, full.get_layer("avg_pool").output, name="backbone")
    elif weights in (None, ""):
        base = untrained()
    else:
        raise ValueError(f"{name} needs a local .keras file ({hint})")
    inputs = keras.Input((img_size, img_size, 3), name="image")
    model = _head(inputs, base(inputs, training=False), num_classes)
    return Architecture(name, model, img_size, 127.0, 128.0, backbone=base)


def _lite0_random(img_size: int) -> keras.Model:
    """Untrained EfficientNet-B0 (Lite0 has no squeeze-excite; close enough for tests and from-scratch runs)."""
    base = keras.applications.EfficientNetB0(
        input_shape=(img_size, img_size, 3), include_top=False, pooling="avg", weights=None
    )
    return keras.Model(base.input, base.output, name="backbone")
