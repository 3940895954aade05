"""MindSpore's DCGAN tutorial ("DCGAN生成漫画头像") as far as its checkpoints are concerned: its
generator's layout (a SequentialCell attribute `generator`, input noise `[N, nz, 1, 1]`) and the
cells it wraps the networks in (loss cells, TrainOneStepCell, a DCGAN cell, all auto-prefixing),
which give the saved parameters names like "myTrainOneStepCellForG.netG.generator.0.weight".
`save_checkpoint(netG, path)` as its training loop does. Used as an oracle: such a file must
load into mindgan's dcgan family.
"""
import mindspore as ms
from mindspore import nn
from mindspore.common.initializer import Normal


def _up(c_in, c_out, stride, padding):
    return nn.Conv2dTranspose(c_in, c_out, kernel_size=4, stride=stride, padding=padding,
                              weight_init=Normal(mean=0, sigma=0.02), has_bias=False, pad_mode="pad")


def _norm(width):
    return nn.BatchNorm2d(num_features=width, gamma_init=Normal(mean=1, sigma=0.02))


class TutorialGenerator(nn.Cell):
    def __init__(self, nz=100, ngf=64, nc=3):
        super().__init__()
        self.generator = nn.SequentialCell()
        widths = [nz, ngf * 8, ngf * 4, ngf * 2, ngf]
        for i, (c_in, c_out) in enumerate(zip(widths, widths[1:])):
            self.generator.append(_up(c_in, c_out, 1 if i == 0 else 2, 0 if i == 0 else 1))
            self.generator.append(_norm(c_out))
            self.generator.append(nn.ReLU())
        self.generator.append(_up(ngf, nc, 2, 1))
        self.generator.append(nn.Tanh())

    def construct(self, x):
        return self.generator(x)


class TutorialDiscriminator(nn.Cell):
    def __init__(self, ndf=64, nc=3):
        super().__init__()
        self.discriminator = nn.SequentialCell()
        self.discriminator.append(nn.Conv2d(nc, ndf, 4, 2, pad_mode="pad", padding=1, has_bias=False))
        self.discriminator.append(nn.LeakyReLU(0.2))
        self.discriminator.append(nn.Conv2d(ndf, 1, 4, 1, pad_mode="pad", has_bias=False))
        self.discriminator.append(nn.Sigmoid())

    def construct(self, x):
        return self.discriminator(x)


class _WithLoss(nn.Cell):
    def __init__(self, netD, netG):
        super().__init__(auto_prefix=True)
        self.netD = netD
        self.netG = netG


class _DCGAN(nn.Cell):
    def __init__(self, step_d, step_g):
        super().__init__(auto_prefix=True)
        self.myTrainOneStepCellForD = step_d
        self.myTrainOneStepCellForG = step_g


def save_generator(path, nz=100, ngf=8, nc=3, seed=0):
    """A trained-looking tutorial generator (non-trivial BatchNorm statistics), wrapped as the
    tutorial wraps it, saved to `path`."""
    import numpy as np

    ms.set_seed(seed)
    net = TutorialGenerator(nz, ngf, nc)
    net_d = TutorialDiscriminator(ngf, nc)
    step_d = nn.TrainOneStepCell(_WithLoss(net_d, net), nn.Adam(net_d.trainable_params()))
    step_g = nn.TrainOneStepCell(_WithLoss(net_d, net), nn.Adam(net.trainable_params()))
    _DCGAN(step_d, step_g)
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        if "moving" in p.name:
            p.set_data(ms.Tensor(rng.uniform(0.5, 1.5, p.shape).astype(np.float32)))
    ms.save_checkpoint(net, str(path))
    net.set_train(False)
    return net
