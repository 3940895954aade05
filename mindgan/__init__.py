"""mindgan: the MindSpore "GAN图像生成" tutorial (an MLP GAN on MNIST) as an installable package.

Modules: `data` (MNIST IDX loader, batches), `models` (Generator, Discriminator),
`train` (the compiled training step and loop), `checkpoint`, `infer`, `viz`.
"""
__version__ = "0.1.0"
