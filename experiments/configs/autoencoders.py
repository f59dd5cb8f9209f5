"""Autoencoders on Fashion-MNIST: dense, stacked, tied, convolutional, denoising, sparse, and variational.

Every run reconstructs the image in [0, 1] (data.normalize='unit') with a per-pixel Bernoulli
cross-entropy, trained by Adam for the same steps; results.md ranks them by test pixel MSE and gives the
cross-entropy (nats per image) beside it. The VAEs' rows add their KL term and negative ELBO in nats per
image, the figure Flax's VAE example reports (about 104 on binarized MNIST after 10 epochs);
`vae_binary` trains and tests on MNIST-style binarized pixels (data.normalize='binary'), where that
figure is a true negative log-likelihood bound. `vae_2d` has a 2-unit code, drawn as it is in
code_space.png. Pictures: reconstructions.png, code_space.png, samples.png (VAEs, from the prior).
"""

import ml_collections

from experiments.configs import default

VAE = 'model.name=vae model.hidden=(500,) model.code=20'  # Flax's VAE example: 500 hidden units, 20 latents.
VARIANTS = {
    'dense': 'model.name=autoencoder model.hidden=(256,) model.code=32',
    'stacked': 'model.name=autoencoder model.hidden=(512,256) model.code=32',
    'tied': 'model.name=autoencoder model.hidden=(512,256) model.code=32 model.tied=True',
    'conv': 'model.name=conv_autoencoder model.widths=(32,64) model.code=32',
    'denoising': 'model.name=autoencoder model.hidden=(512,256) model.code=32 model.input_noise=0.3',
    'sparse': 'model.name=autoencoder model.hidden=(512,256) model.code=128 model.sparsity=kl '
              'model.sparsity_weight=0.5 model.sparsity_target=0.05',
    'vae': VAE,
    'vae_binary': VAE + ' data.normalize=binary',
    'vae_2d': 'model.name=vae model.hidden=(500,) model.code=2',
}


def get_config(arg: str | None = None):
  default.no_variants(arg, 'autoencoders')
  c = default.get_config()
  c.task = ml_collections.ConfigDict({'name': 'reconstruction', 'loss': 'bernoulli'})
  c.model = ml_collections.ConfigDict({'name': 'autoencoder', 'hidden': (256,), 'code': 32, 'tied': False,
                                       'widths': (32, 64), 'input_noise': 0.0, 'sparsity': '',
                                       'sparsity_weight': 0.0, 'sparsity_target': 0.05})
  c.data.normalize = 'unit'
  c.data.augment = ''
  c.data.batch_size = 128
  c.data.train_eval_examples = 10000
  c.optimizer.name = 'adam'
  c.optimizer.lr = 1e-3
  c.optimizer.weight_decay = 0.0
  c.optimizer.schedule.name = 'cosine'
  default.train_for(c, steps=4690, log_every=67, eval_every=938)  # 10 epochs of 60,000 images.
  c.experiment.variants = '; '.join(f'{name}: {fields}' for name, fields in VARIANTS.items())
  c.experiment.columns = 'model.name,model.code,data.normalize'
  c.experiment.report = 'autoencoders'
  return c
