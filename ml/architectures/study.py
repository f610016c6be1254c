"""The original 2019 study's networks (LeNet-5, AlexNet, VGG16) and BKNet, trained from scratch.

LeNet-5, AlexNet and VGG16 follow the study's layer tables (Bảng 3.2.1–3.2.3), adapted to RGB input
and N outputs. What changed, and why (so that they train at all on ~1,300 photos):

- ReLU everywhere and batch norm (momentum 0.9) after every convolution (AlexNet's LRN "Norm" layers
  become batch norm); dropout 0.5 before the fully connected layers, as in the AlexNet/VGG papers.
- LeNet-5 keeps its Flatten (its table is tiny); AlexNet and VGG16 end their conv part with global
  average pooling instead of Flatten, and AlexNet's overlapping max pools use "same" padding, so any
  input size from 32 px up builds and FC-1 does not depend on the input size.
- The RBF/1000-way output becomes a softmax Dense ``probs`` with N units.

BKNet (the study's own network, whose details are lost) is a compact residual CNN built from
depthwise-separable convolutions: see ``bknet`` and docs/architectures.md.

Every model maps a normalised image ((x - 127.5) / 127.5) to class probabilities and has a layer
named ``embedding`` holding the penultimate feature vector.
"""
from __future__ import annotations

import keras
from keras import layers

from ml.architectures import Architecture, register

# Batch-norm moving statistics follow the last ~10 steps, not ~100 (Keras' 0.99): with ~40 steps per
# epoch on ~1,300 photos the default lags far behind the weights and inference-mode scores stay at chance.
BN_MOMENTUM = 0.9


def _conv_bn(x, filters: int, kernel: int, strides: int = 1, padding: str = "same", name: str = ""):
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _fc(x, units: int, name: str, dropout: float = 0.5):
    x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.Dense(units, activation="relu", name=name)(x)


def _finish(name: str, inputs, features, num_classes: int, img_size: int, dropout: float = 0.0) -> Architecture:
    embedding = layers.Identity(name="embedding")(features)
    x = layers.Dropout(dropout, name="head_dropout")(embedding) if dropout else embedding
    probs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return Architecture(name, keras.Model(inputs, probs, name=name), img_size)


@register("lenet5", default_size=128)  # the study's LeNet variant took 128×128 RGB
def lenet5(num_classes: int, img_size: int, **_) -> Architecture:
    """Bảng 3.2.1: conv5×5·6 → pool → conv5×5·16 → pool → FC-120 → FC-84 → N."""
    inputs = keras.Input((img_size, img_size, 3), name="image")
    x = _conv_bn(inputs, 6, 5, padding="valid", name="conv1")
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = _conv_bn(x, 16, 5, padding="valid", name="conv2")
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = _fc(x, 120, "fc1")
    x = _fc(x, 84, "fc2", dropout=0.3)
    return _finish("lenet5", inputs, x, num_classes, img_size)


@register("alexnet", default_size=227)
def alexnet(num_classes: int, img_size: int, fc: int = 4096, **_) -> Architecture:
    """Bảng 3.2.2: conv11×11/4·96 → pool → conv5×5·256 → pool → conv3×3·384,384,256 → pool → FC-4096 ×2 → N."""
    inputs = keras.Input((img_size, img_size, 3), name="image")
    x = _conv_bn(inputs, 96, 11, strides=4, padding="valid", name="conv1")
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool1")(x)
    x = _conv_bn(x, 256, 5, name="conv2")
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool2")(x)
    for i, filters in enumerate((384, 384, 256), start=3):
        x = _conv_bn(x, filters, 3, name=f"conv{i}")
    x = layers.MaxPooling2D(3, 2, padding="same", name="pool3")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = _fc(x, fc, "fc1")
    x = _fc(x, fc, "fc2")
    return _finish("alexnet", inputs, x, num_classes, img_size)


@register("vgg16", default_size=224)
def vgg16(num_classes: int, img_size: int, fc: int = 4096, **_) -> Architecture:
    """Bảng 3.2.3: five stages of 3×3 convs (64, 128, 256×3, 512×3, 512×3), each then a 2×2 pool; FC-4096 ×2 → N."""
    inputs = keras.Input((img_size, img_size, 3), name="image")
    x = inputs
    for stage, (filters, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), start=1):
        for i in range(1, convs + 1):
            x = _conv_bn(x, filters, 3, name=f"conv{stage}{i}")
        x = layers.MaxPooling2D(2, padding="same", name=f"pool{stage}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = _fc(x, fc, "fc1")
    x = _fc(x, fc, "fc2")
    return _finish("vgg16", inputs, x, num_classes, img_size)


def _residual_block(x, filters: int, strides: int, name: str):
    """Two 3×3 depthwise-separable convs with batch norm, plus a (projected) identity shortcut."""
    shortcut = x
    y = layers.SeparableConv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_sep1")(x)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep2")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn2")(y)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


BKNET_STAGES = ((64, 2), (128, 2), (128, 1), (256, 2), (256, 1), (384, 2))  # (filters, stride) per block


@register("bknet", default_size=112)
def bknet(num_classes: int, img_size: int, **_) -> Architecture:
    """Compact residual CNN of depthwise-separable blocks (~0.7 M parameters); see docs/architectures.md."""
    inputs = keras.Input((img_size, img_size, 3), name="image")
    x = _conv_bn(inputs, 32, 3, strides=2, name="stem")
    for i, (filters, strides) in enumerate(BKNET_STAGES, start=1):
        x = _residual_block(x, filters, strides, name=f"block{i}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return _finish("bknet", inputs, x, num_classes, img_size, dropout=0.3)
