"""The tutorial's ("GAN图像生成") network and optimizer set-up, as its notebook writes it.

Used as an oracle: checkpoints this code saves must load into mindgan's Generator.
"""
import mindspore as ms
from mindspore import nn, ops

img_size = 28
latent_size = 100
lr = 0.0002


class Generator(nn.Cell):
    def __init__(self, latent_size, auto_prefix=True):
        super(Generator, self).__init__(auto_prefix=auto_prefix)
        self.model = nn.SequentialCell()
        self.model.append(nn.Dense(latent_size, 128))
        self.model.append(nn.ReLU())
        self.model.append(nn.Dense(128, 256))
        self.model.append(nn.BatchNorm1d(256))
        self.model.append(nn.ReLU())
        self.model.append(nn.Dense(256, 512))
        self.model.append(nn.BatchNorm1d(512))
        self.model.append(nn.ReLU())
        self.model.append(nn.Dense(512, 1024))
        self.model.append(nn.BatchNorm1d(1024))
        self.model.append(nn.ReLU())
        self.model.append(nn.Dense(1024, img_size * img_size))
        self.model.append(nn.Tanh())

    def construct(self, x):
        img = self.model(x)
        return ops.reshape(img, (-1, 1, 28, 28))


class Discriminator(nn.Cell):
    def __init__(self, auto_prefix=True):
        super().__init__(auto_prefix=auto_prefix)
        self.model = nn.SequentialCell()
        self.model.append(nn.Dense(img_size * img_size, 512))
        self.model.append(nn.LeakyReLU())
        self.model.append(nn.Dense(512, 256))
        self.model.append(nn.LeakyReLU())
        self.model.append(nn.Dense(256, 1))
        self.model.append(nn.Sigmoid())

    def construct(self, x):
        x = ops.reshape(x, (-1, img_size * img_size))
        return self.model(x)


def build():
    """The tutorial's nets and optimizers, named as the tutorial names them."""
    net_g = Generator(latent_size)
    net_g.update_parameters_name('generator')
    net_d = Discriminator()
    net_d.update_parameters_name('discriminator')
    optimizer_d = nn.Adam(net_d.trainable_params(), learning_rate=lr, beta1=0.5, beta2=0.999)
    optimizer_g = nn.Adam(net_g.trainable_params(), learning_rate=lr, beta1=0.5, beta2=0.999)
    optimizer_g.update_parameters_name('optim_g')
    optimizer_d.update_parameters_name('optim_d')
    return net_g, net_d, optimizer_g, optimizer_d


def save_generator(path):
    """What the tutorial does at each epoch's end: save_checkpoint(net_g, 'Generator{epoch}.ckpt')."""
    net_g, *_ = build()
    ms.save_checkpoint(net_g, str(path))
    return net_g


def make_train_step(net_g, net_d, optimizer_g, optimizer_d):
    """The tutorial's training step, as its notebook writes it (D first, then G)."""
    loss = nn.BCELoss(reduction='mean')

    def generator_forward(test_noises):
        fake_data = net_g(test_noises)
        fake_out = net_d(fake_data)
        loss_g = loss(fake_out, ops.ones_like(fake_out))
        return loss_g

    def discriminator_forward(real_data, test_noises):
        fake_data = net_g(test_noises)
        fake_out = net_d(fake_data)
        real_out = net_d(real_data)
        real_loss = loss(real_out, ops.ones_like(real_out))
        fake_loss = loss(fake_out, ops.zeros_like(fake_out))
        loss_d = real_loss + fake_loss
        return loss_d

    grad_g = ms.value_and_grad(generator_forward, None, net_g.trainable_params())
    grad_d = ms.value_and_grad(discriminator_forward, None, net_d.trainable_params())

    def train_step(real_data, latent_code):
        real_data = ops.stop_gradient(real_data)
        latent_code = ops.stop_gradient(latent_code)
        loss_d, grads_d = grad_d(real_data, latent_code)
        optimizer_d(grads_d)
        loss_g, grads_g = grad_g(latent_code)
        optimizer_g(grads_g)
        return loss_d, loss_g

    return train_step
