"""Check `--model dcgan-carpedm20` against TensorFlow: the same weights in both, the same inputs,
the forward outputs compared, at several output sizes.

    python benchmarks/carpedm20_vs_tensorflow.py --tf_python /path/to/tf-venv/bin/python

TensorFlow (`pip install tensorflow-cpu`) needs NumPy 2 and MindSpore NumPy < 2, so TensorFlow
runs in its own virtual environment: this script (in mindgan's) builds mindgan's G and D at
each size, writes their weights in carpedm20's TensorFlow layout and names (`g_h0_lin/Matrix`,
`d_h1_conv/w`, ...) with the inputs to an .npz, and runs itself under --tf_python, where
carpedm20's model.py generator and discriminator are rebuilt from TensorFlow ops (tf.nn.conv2d,
tf.nn.conv2d_transpose with output_shape, its batch norm as tf.nn.moments +
batch_normalization) on those weights. Both modes are compared: training (batch statistics)
and inference (moving statistics, set to random values first). A tool, not a test: the suite
does not require TensorFlow.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_v", "3")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
BATCH = 4


# ------------------------------------------------------------------ TensorFlow's side (NumPy 2)

def tensorflow_outputs(npz: str, out: str) -> None:
    """carpedm20's generator and discriminator (model.py, ops.py) on the weights in `npz`."""
    import tensorflow as tf

    w = dict(np.load(npz))
    size, gf, df, c = (int(v) for v in w["meta"])

    def same(n, k):  # conv_out_size_same
        return -(-n // k)

    s = [same(size, k) for k in (1, 2, 4, 8, 16)]

    def bn(x, name, train):
        if train:
            mean, var = tf.nn.moments(x, axes=[0, 1, 2])
        else:
            mean, var = w[f"{name}/moving_mean"], w[f"{name}/moving_variance"]
        return tf.nn.batch_normalization(x, mean, var, w[f"{name}/beta"], w[f"{name}/gamma"], 1e-5)

    def linear(x, name):
        return tf.matmul(x, w[f"{name}/Matrix"]) + w[f"{name}/bias"]

    def deconv(x, shape, name):
        y = tf.nn.conv2d_transpose(x, w[f"{name}/w"], output_shape=shape, strides=[1, 2, 2, 1])
        return tf.nn.bias_add(y, w[f"{name}/biases"])

    def conv(x, name):
        return tf.nn.bias_add(tf.nn.conv2d(x, w[f"{name}/w"], strides=[1, 2, 2, 1], padding="SAME"),
                              w[f"{name}/biases"])

    def lrelu(x):
        return tf.maximum(x, 0.2 * x)

    def generator(z, train):
        h = tf.reshape(linear(z, "g_h0_lin"), [-1, s[4], s[4], gf * 8])
        h = tf.nn.relu(bn(h, "g_bn0", train))
        widths = [gf * 4, gf * 2, gf, c]
        for k in range(4):
            h = deconv(h, [BATCH, s[3 - k], s[3 - k], widths[k]], f"g_h{k + 1}")
            h = tf.nn.relu(bn(h, f"g_bn{k + 1}", train)) if k < 3 else tf.nn.tanh(h)
        return h

    def discriminator(x, train):
        h = lrelu(conv(x, "d_h0_conv"))
        for k in (1, 2, 3):
            h = lrelu(bn(conv(h, f"d_h{k}_conv"), f"d_bn{k}", train))
        return linear(tf.reshape(h, [BATCH, -1]), "d_h4_lin")

    z = tf.constant(w["z"])
    x = tf.constant(w["x"].transpose(0, 2, 3, 1))  # NHWC
    results = {}
    for mode, train in (("train", True), ("eval", False)):
        results[f"g_{mode}"] = generator(z, train).numpy().transpose(0, 3, 1, 2)
        results[f"d_{mode}"] = discriminator(x, train).numpy()
    results["version"] = np.array(tf.__version__)
    np.savez(out, **results)


# ------------------------------------------------------------------ mindgan's side

def mindgan_weights(size: int, ngf: int, ndf: int, seed: int, route: str) -> tuple[dict, dict]:
    """(carpedm20-layout weights and inputs for TensorFlow, mindgan's outputs), the networks'
    layers on the CPU convolution `route` (`mindgan.cpu.ROUTES`)."""
    import mindspore as ms
    from mindspore import nn

    from mindgan.cpu import Kernels
    from mindgan.models import ModelSpec, build

    ms.set_seed(seed)
    rng = np.random.default_rng(seed)
    net_g, net_d = build(ModelSpec("dcgan-carpedm20", channels=3, image_size=size, ngf=ngf, ndf=ndf),
                         Kernels(route))
    tf_w = {"meta": np.array([size, ngf, ndf, 3])}

    def export(net, prefix):
        """carpedm20's variable names in layer order: linear/conv/deconv and batch norms."""
        layers = [c for c in net.model.cells() if isinstance(c, (nn.Dense, nn.Conv2d, nn.Conv2dTranspose,
                                                                 nn.BatchNorm2d))]
        if prefix == "g":
            names = ["g_h0_lin", "g_bn0", "g_h1", "g_bn1", "g_h2", "g_bn2", "g_h3", "g_bn3", "g_h4"]
        else:
            names = ["d_h0_conv", "d_h1_conv", "d_bn1", "d_h2_conv", "d_bn2", "d_h3_conv", "d_bn3", "d_h4_lin"]
        assert len(layers) == len(names)
        for layer, name in zip(layers, names):
            if isinstance(layer, nn.BatchNorm2d):
                # moving statistics other than 0 and 1, so inference mode tests them
                mean = rng.normal(0, 0.1, layer.moving_mean.shape).astype(np.float32)
                var = rng.uniform(0.5, 1.5, layer.moving_variance.shape).astype(np.float32)
                gamma = rng.uniform(0.5, 1.5, layer.gamma.shape).astype(np.float32)
                beta = rng.normal(0, 0.1, layer.beta.shape).astype(np.float32)
                for p, v in ((layer.moving_mean, mean), (layer.moving_variance, var),
                             (layer.gamma, gamma), (layer.beta, beta)):
                    p.set_data(ms.Tensor(v))
                tf_w.update({f"{name}/moving_mean": mean, f"{name}/moving_variance": var,
                             f"{name}/gamma": gamma, f"{name}/beta": beta})
                continue
            weight = layer.weight.asnumpy()
            bias = rng.normal(0, 0.02, layer.bias.shape).astype(np.float32)  # carpedm20 starts at 0
            layer.bias.set_data(ms.Tensor(bias))
            if isinstance(layer, nn.Dense):  # [out, in] -> Matrix [in, out]
                tf_w[f"{name}/Matrix"], tf_w[f"{name}/bias"] = weight.T.copy(), bias
            else:  # conv [O, C, k, k] -> [k, k, C, O]; transposed [in, out, k, k] -> [k, k, out, in]
                tf_w[f"{name}/w"], tf_w[f"{name}/biases"] = weight.transpose(2, 3, 1, 0).copy(), bias

    export(net_g, "g")
    export(net_d, "d")
    z = rng.uniform(-1, 1, (BATCH, 100)).astype(np.float32)
    x = rng.uniform(-1, 1, (BATCH, 3, size, size)).astype(np.float32)
    tf_w.update(z=z, x=x)
    ours = {}
    for mode, training in (("eval", False), ("train", True)):  # eval first: training moves the statistics
        net_g.set_train(training)
        net_d.set_train(training)
        ours[f"g_{mode}"] = net_g(ms.Tensor(z)).asnumpy()
        ours[f"d_{mode}"] = net_d(ms.Tensor(x)).asnumpy()
    return tf_w, ours


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--tf_python", help="python of a virtual environment with tensorflow-cpu installed")
    p.add_argument("--sizes", type=int, nargs="+", default=[48, 50, 64], help="output sizes (default 48 50 64)")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--routes", nargs="+", default=None,
                   help="mindgan's CPU convolution routes to check (default: stock, and onednn where it builds)")
    p.add_argument("--worker", nargs=2, metavar=("NPZ", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        tensorflow_outputs(*args.worker)
        return 0
    if not args.tf_python:
        p.error("--tf_python: give the python of a virtual environment with tensorflow-cpu "
                "(python -m venv tf && tf/bin/pip install tensorflow-cpu)")
    sys.path.insert(0, str(REPO))
    from mindgan.cpu import choose_cpu_kernels

    choose_cpu_kernels("dcgan-carpedm20")
    import mindspore as ms

    from mindgan.cpu.native import library_status

    ms.set_device("CPU")
    routes = args.routes or ["stock"] + (["onednn"] if library_status()[0] is not None else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size, route in [(size, route) for size in args.sizes for route in routes]:
            weights, ours = mindgan_weights(size, args.ngf, args.ndf, args.seed, route)
            npz, out = Path(tmp) / f"w{size}.npz", Path(tmp) / f"tf{size}.npz"
            np.savez(npz, **weights)
            done = subprocess.run([args.tf_python, __file__, "--worker", str(npz), str(out)],
                                  capture_output=True, text=True, timeout=600)
            if done.returncode:
                raise SystemExit(f"TensorFlow worker failed:\n{done.stderr[-3000:]}")
            theirs = dict(np.load(out))
            version = str(theirs.pop("version"))
            diffs = {k: float(np.abs(ours[k] - theirs[k]).max()) for k in ours}
            scale = {k: float(np.abs(theirs[k]).max()) for k in ours}
            rows.append((size, route, ours["g_train"].shape, diffs, scale))
    print(f"dcgan-carpedm20 against carpedm20's graph in TensorFlow {version} (MindSpore {ms.__version__}), "
          f"ngf {args.ngf}, ndf {args.ndf}, batch {BATCH}, float32; max |mindgan - TensorFlow|:")
    print("| size | mindgan route | G output | G train | G eval | D train | D eval | max |D logit| |\n"
          "|---|---|---|---|---|---|---|---|")
    for size, route, shape, d, scale in rows:
        print(f"| {size} | {route} | {'x'.join(map(str, shape[1:]))} | {d['g_train']:.2e} | {d['g_eval']:.2e} | "
              f"{d['d_train']:.2e} | {d['d_eval']:.2e} | {max(scale['d_train'], scale['d_eval']):.3g} |")
    worst = max(max(d.values()) / max(1.0, max(s.values())) for *_, d, s in rows)
    print(f"worst difference relative to the output's scale: {worst:.2e}")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
