"""A small LeNet-style MNIST classifier: the feature extractor for FID and mode coverage.

The shipped weights (`mindgan/assets/mnist_classifier.ckpt`) were made by

    python -m mindgan.classifier --epochs 10 --out /tmp/stage1.ckpt
    python -m mindgan.classifier --init /tmp/stage1.ckpt --epochs 3 --lr 1e-4 --seed 1

(10 epochs at lr 1e-3, then 3 at 1e-4), which prints the test accuracy.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

if __name__ == "__main__":  # run as a command: pick the CPU kernels before MindSpore loads (LeNet convolves)
    from mindgan.cpu import choose_cpu_kernels
    choose_cpu_kernels(True)

import mindspore as ms  # noqa: E402
from mindspore import nn, ops

ASSET = Path(__file__).resolve().parent / "assets" / "mnist_classifier.ckpt"
FEATURES = 84
IMAGE_SHAPE = (1, 28, 28)  # what the LeNet reads: MNIST digits

__all__ = ["LeNet", "load_classifier", "predict", "train_classifier", "ASSET", "FEATURES", "IMAGE_SHAPE"]


class LeNet(nn.Cell):
    """LeNet-5: images `[N, 1, 28, 28]` in [-1, 1] -> logits `[N, 10]`; `features(x)` -> `[N, 84]`.

    conv 5x5 (6, padded) -> ReLU -> max-pool 2 -> conv 5x5 (16) -> ReLU -> max-pool 2 ->
    Dense 400 -> 120 -> ReLU -> Dense 120 -> 84 -> ReLU (the features used for FID) -> Dense 84 -> 10.
    Kept this small on purpose: MindSpore 2.10's stock CPU Conv2d is slow.
    """

    def __init__(self):
        super().__init__()
        self.body = nn.SequentialCell(
            nn.Conv2d(1, 6, 5, pad_mode="pad", padding=2, has_bias=True), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5, pad_mode="valid", has_bias=True), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Flatten(), nn.Dense(16 * 5 * 5, 120), nn.ReLU(), nn.Dense(120, FEATURES), nn.ReLU())
        self.head = nn.Dense(FEATURES, 10)

    def features(self, x):
        return self.body(x)

    def construct(self, x):
        return self.head(self.body(x))


def load_classifier(path: str | Path = ASSET) -> LeNet:
    """The shipped (or another) classifier, in inference mode."""
    from .checkpoint import read_checkpoint

    net = LeNet()
    missing, _ = ms.load_param_into_net(net, read_checkpoint(path), strict_load=True)
    if missing:
        raise ValueError(f"{path}: not a mindgan classifier (missing {missing[0]})")
    net.set_train(False)
    return net


def predict(net: LeNet, images: np.ndarray, batch_size: int = 1000
            ) -> tuple[np.ndarray, np.ndarray]:
    """(features float64 `[N, 84]`, softmax probabilities float64 `[N, 10]`) for images
    float32 `[N, 1, 28, 28]` in [-1, 1], in batches (bounded memory)."""
    feats, probs = [], []
    for start in range(0, len(images), batch_size):
        x = ms.Tensor(np.ascontiguousarray(images[start:start + batch_size], np.float32))
        f = net.features(x)
        feats.append(f.asnumpy().astype(np.float64))
        probs.append(ops.softmax(net.head(f), axis=-1).asnumpy().astype(np.float64))
    return np.concatenate(feats), np.concatenate(probs)


def accuracy(net: LeNet, images_u8: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy on uint8 `[N, 28, 28]` images."""
    from .data import to_model_range

    _, probs = predict(net, to_model_range(images_u8))
    return float((probs.argmax(1) == labels).mean())


def train_classifier(epochs: int = 10, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                     data_dir=None, progress: bool = True, init=None) -> tuple[LeNet, float]:
    """Train LeNet on the MNIST training set (Adam, cross-entropy), from scratch or from the
    weights in `init`; returns (net, test accuracy)."""
    from tqdm.auto import tqdm

    from .data import batch_indices, load_mnist, to_model_range

    ms.set_seed(seed)
    images, labels = load_mnist("train", data_dir)
    x_all = ms.Tensor(to_model_range(images))
    y_all = ms.Tensor(labels.astype(np.int32))
    net = load_classifier(init) if init else LeNet()
    opt = nn.Adam(net.trainable_params(), learning_rate=lr)
    loss_fn = nn.CrossEntropyLoss()

    def forward(x, y):
        return loss_fn(net(x), y)

    grad = ms.value_and_grad(forward, None, opt.parameters)

    @ms.jit  # the data are arguments: a captured 188 MB tensor would become a graph constant
    def step(x_all, y_all, idx):
        loss, grads = grad(ops.gather(x_all, idx, 0), ops.gather(y_all, idx, 0))
        opt(grads)
        return loss

    from .runtime import HostSync

    # One sync per step, without busy-waiting: an unsynced loop queues launches without
    # bound and ran 4x slower here.
    sync = HostSync(enabled=ms.get_context("device_target") == "CPU")
    net.set_train(True)
    for epoch in range(epochs):
        order = batch_indices(len(images), batch_size, seed, epoch)
        bar = tqdm(order, desc=f"classifier epoch {epoch + 1}/{epochs}", disable=not progress,
                   leave=False)
        losses = [float(sync.fetch(step(x_all, y_all, ms.Tensor(idx)))) for idx in bar]
        bar.close()
        print(f"classifier epoch {epoch + 1}/{epochs}: mean loss {np.mean(losses):.4f}", flush=True)
    net.set_train(False)
    test_images, test_labels = load_mnist("test", data_dir)
    return net, accuracy(net, test_images, test_labels)


def main(argv=None) -> int:
    from .checkpoint import atomic_save
    from .cli import Parser, add_runtime_flags, non_negative, one_line_errors, parse, positive, start

    p = Parser(prog="python -m mindgan.classifier",
               description="Retrain the MNIST classifier used by mindgan.evaluate (FID features, "
                           "mode coverage).")
    p.add_argument("--epochs", type=positive("epochs"), default=10, help="training epochs (default 10)")
    p.add_argument("--seed", type=non_negative("seed"), default=0, help="seed (default 0)")
    p.add_argument("--lr", type=positive("lr", float), default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--init", default=None, help="start from these weights (fine-tuning)")
    p.add_argument("--out", default=str(ASSET), help=f"where to write (default {ASSET})")
    p.add_argument("--data_dir", default=None, help="MNIST folder (default: the usual search)")
    add_runtime_flags(p, device_default="CPU")
    args = parse(p, argv)
    start(p, args.device_target)
    t0 = time.perf_counter()
    with one_line_errors(p):
        net, acc = train_classifier(args.epochs, lr=args.lr, seed=args.seed, data_dir=args.data_dir,
                                    init=args.init)
    atomic_save(net, args.out)
    print(f"test accuracy {acc * 100:.2f} %, {time.perf_counter() - t0:.0f} s -> {args.out}")
    return 0 if acc >= 0.99 else 1


if __name__ == "__main__":
    sys.exit(main())
