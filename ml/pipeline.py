"""tf.data input pipeline and augmentation (the study's flips/rotations plus crops, zoom and colour jitter)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from ml.data import Sample
from ml.images import load_rgb, to_array

LOAD_MARGIN = 1.15  # images are stored a little larger so crops and rotations keep detail


def load_arrays(samples: list[Sample], size: int, *, desc: str = "", threads: int = 4) -> np.ndarray:
    """Decode and resize every sample to size×size uint8 (a thread pool: Pillow releases the GIL)."""
    from tqdm import tqdm

    def one(s: Sample) -> np.ndarray:
        return to_array(load_rgb(s.path), size).astype(np.uint8)

    with ThreadPoolExecutor(threads) as pool:
        it = pool.map(one, samples)
        arrays = list(tqdm(it, total=len(samples), desc=desc or "loading", unit="img", leave=False, disable=not desc))
    return np.stack(arrays) if arrays else np.zeros((0, size, size, 3), np.uint8)


class Augment:
    """Random views of (LOAD_MARGIN × img_size) images as img_size float 0..255, in one fused op.

    Flip, rotation (±15°), zoom/random resized crop and translation are composed into a single
    projective transform per image (one resampling pass, cheap on CPU); brightness, contrast and
    saturation jitter are plain arithmetic. Then the ways two web sources differ, so that the model
    cannot learn the source instead of the landmark: a lower resolution (down- and up-sampling), blur,
    JPEG recompression, and a text banner or watermark strip across the top or bottom.
    """

    def __init__(self, img_size: int, seed: int = 0, *, max_rotation: float = 15.0,
                 scale: tuple[float, float] = (0.6, 1.2), shift: float = 0.08,
                 brightness: float = 0.2, contrast: float = 0.25, saturation: float = 0.35,
                 low_res: float = 0.4, blur: float = 0.2, jpeg: float = 0.3, banner: float = 0.2):
        self.size = img_size
        self.rng = tf.random.Generator.from_seed(seed)
        self.max_rotation, self.scale, self.shift = max_rotation, scale, shift
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self.low_res, self.blur, self.jpeg, self.banner = low_res, blur, jpeg, banner  # each a probability

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        images = tf.cast(images, tf.float32)
        n = tf.shape(images)[0]
        in_size = tf.cast(tf.shape(images)[1], tf.float32)
        uniform = lambda lo, hi: self.rng.uniform([n], lo, hi)  # noqa: E731
        theta = uniform(-self.max_rotation, self.max_rotation) * (np.pi / 180)
        # scale 1.0 shows an img_size window of the input; LOAD_MARGIN shows all of it
        zoom = uniform(*self.scale) * LOAD_MARGIN
        flip = tf.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0)
        tx, ty = uniform(-self.shift, self.shift) * in_size, uniform(-self.shift, self.shift) * in_size
        cos = tf.cos(theta) * zoom * in_size / (self.size * LOAD_MARGIN)
        sin = tf.sin(theta) * zoom * in_size / (self.size * LOAD_MARGIN)
        m00, m01, m10, m11 = cos * flip, -sin, sin * flip, cos
        c_out, c_in = self.size / 2.0, in_size / 2.0
        a2 = c_in + tx - (m00 * c_out + m01 * c_out)
        b2 = c_in + ty - (m10 * c_out + m11 * c_out)
        zeros = tf.zeros([n])
        transforms = tf.stack([m00, m01, a2, m10, m11, b2, zeros, zeros], axis=1)
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=[self.size, self.size],
            fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT")
        out = self._source_shift(out, n)
        shape = [n, 1, 1, 1]
        out = out + self.rng.uniform(shape, -self.brightness, self.brightness) * 255.0
        mean = tf.reduce_mean(out, axis=[1, 2, 3], keepdims=True)
        out = (out - mean) * self.rng.uniform(shape, 1 - self.contrast, 1 + self.contrast) + mean
        gray = tf.reduce_mean(out, axis=3, keepdims=True)
        out = (out - gray) * self.rng.uniform(shape, 1 - self.saturation, 1 + self.saturation) + gray
        return tf.clip_by_value(out, 0.0, 255.0)


    def _source_shift(self, out: tf.Tensor, n) -> tf.Tensor:
        size = self.size
        pick = lambda p: tf.reshape(self.rng.uniform([n]) < p, [n, 1, 1, 1])  # noqa: E731
        # a thumbnail's resolution: one random side per batch (60..85 % of the input side), per-image choice
        side = tf.cast(self.rng.uniform([], 0.3, 0.85) * size, tf.int32)
        small = tf.image.resize(tf.image.resize(out, (side, side), antialias=True), (size, size))
        out = tf.where(pick(self.low_res), small, out)
        sigma = self.rng.uniform([], 0.6, 1.6)
        taps = tf.exp(-0.5 * (tf.range(-2.0, 3.0) / sigma) ** 2)
        taps = taps / tf.reduce_sum(taps)
        kernel = tf.tile(tf.reshape(taps[:, None] * taps[None, :], [5, 5, 1, 1]), [1, 1, 3, 1])
        blurred = tf.nn.depthwise_conv2d(tf.pad(out, [[0, 0], [2, 2], [2, 2], [0, 0]], "SYMMETRIC"), kernel,
                                         [1, 1, 1, 1], "VALID")
        out = tf.where(pick(self.blur), blurred, out)
        quality = tf.cast(self.rng.uniform([], 20, 80), tf.int32)
        recompressed = tf.map_fn(lambda im: tf.image.adjust_jpeg_quality(im / 255.0, quality) * 255.0, out)
        out = tf.where(pick(self.jpeg), recompressed, out)
        # a banner: a strip of 6..16 % of the height, one colour with darker "text" lines, top or bottom
        rows = tf.range(size, dtype=tf.float32)[None, :, None, None]
        height = self.rng.uniform([n, 1, 1, 1], 0.06, 0.16) * size
        at_top = self.rng.uniform([n, 1, 1, 1]) < 0.5
        in_strip = tf.where(at_top, rows < height, rows >= size - height)
        colour = self.rng.uniform([n, 1, 1, 3], 0.0, 255.0)
        cols = tf.range(size, dtype=tf.float32)[None, None, :, None]
        text = tf.cast(tf.math.floormod(cols + rows * 0.3, 9.0) < 3.0, tf.float32) * tf.cast(
            tf.abs(rows - tf.where(at_top, height / 2, size - height / 2)) < height / 4, tf.float32)
        strip = colour * (1.0 - 0.6 * text)
        out = tf.where(pick(self.banner) & in_strip, strip, out)
        return out


def augmenter(img_size: int, seed: int = 0, source_shift: bool = True) -> Augment:
    """The training augmentation; without ``source_shift`` no resolution, blur, JPEG or banner changes."""
    return Augment(img_size, seed) if source_shift else Augment(img_size, seed, low_res=0, blur=0, jpeg=0, banner=0)


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    img_size: int,
    batch_size: int,
    mean: float,
    std: float,
    augment: bool,
    shuffle: bool,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of normalised images; augmented views when ``augment``; cached and prefetched."""
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment:
        aug = augmenter(img_size, seed)
        ds = ds.map(lambda x, y: (aug(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda x, y: (tf.image.resize(tf.cast(x, tf.float32), (img_size, img_size)), y))
    ds = ds.map(lambda x, y: ((tf.clip_by_value(x, 0.0, 255.0) - mean) / std, y))
    return ds.prefetch(tf.data.AUTOTUNE)
