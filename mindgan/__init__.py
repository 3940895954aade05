"""mindgan: the MindSpore "GAN图像生成" tutorial (an MLP GAN on MNIST) as an installable package,
grown into a small GAN framework with convolutional families (`--model mlp|dcgan|dcgan-mnist`).

Library modules: `models` (the families, `ModelSpec`, `build`), `gan` (nets + optimizers, the
compiled training step, noise, sampling), `config` (`TrainConfig`), `training` (the loop,
`train`), `rundir` (run folder, loss log), `checkpoint` (atomic files, resume state, loading
any generator), `data` (MNIST IDX loader, download, batches), `viz` (grids, plots, GIFs),
`runtime` (device, logs, host sync, stop requests), `evaluate` and `classifier` (metrics),
`metrics`, `inception`, `pth` and `fidelity` (FID and KID, Inception's),
`fileio`, `cli`. Command lines: `python -m mindgan.train` (module `train`), `mindgan.infer`,
`mindgan.export`, `mindgan.evaluate`, `mindgan.data`, `mindgan.classifier`.
"""
__version__ = "0.3.0"
