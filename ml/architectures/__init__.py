"""Architectures by name (timm-style registry).

Every builder returns an ``Architecture``: a Keras model mapping normalised images to class
probabilities, whose layer named ``embedding`` is the penultimate feature vector, plus the input
preprocessing that must travel with it into the bundle.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_REGISTRY: dict[str, Callable[..., Architecture]] = {}


@dataclass
class Architecture:
    name: str
    model: Any  # keras.Model: normalised image -> probs; has a layer named "embedding"
    img_size: int
    mean: float = 127.5  # x_normalised = (x_0..255 - mean) / std
    std: float = 127.5
    backbone: object = None  # the pretrained base (transfer nets) for two-phase training
    notes: dict = field(default_factory=dict)

    @property
    def preprocess(self) -> dict:
        return {"size": self.img_size, "mean": self.mean, "std": self.std, "resize": "bilinear"}


def register(name: str, default_size: int):
    def wrap(fn):
        fn.default_size = default_size
        _REGISTRY[name] = fn
        return fn

    return wrap


def names() -> list[str]:
    _load_all()
    return list(_REGISTRY)


def default_size(name: str) -> int:
    _load_all()
    return _get(name).default_size


def build(name: str, num_classes: int, img_size: int | None = None, *, weights: str | None = None,
          **kw) -> Architecture:
    """Build ``name`` for ``num_classes``; ``weights`` is "imagenet", a local file, or None (random init)."""
    _load_all()
    fn = _get(name)
    return fn(num_classes=num_classes, img_size=img_size or fn.default_size, weights=weights, **kw)


def _get(name: str):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of: {', '.join(_REGISTRY)}") from None


def _load_all() -> None:
    from ml.architectures import study, transfer  # noqa: F401  (registers on import)
