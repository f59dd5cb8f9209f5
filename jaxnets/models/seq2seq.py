"""Encoder-decoder RNNs with and without attention (Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al.
2015), for token sequences in and out.

The input is a dict {'inputs': source ids [B, S], 'length': valid source steps [B], 'targets': output ids
[B, T]}. A bidirectional GRU encodes the source; a GRU decoder starts from a projection of its final
states and, at each step, reads the previous output token and (with attention) a context vector: the
encoder outputs weighted by softmax scores of the decoder's previous state against each source step,
padding given weight zero. In training the previous token is the target's (teacher forcing); in
evaluation (train=False) the decoder feeds back its own greedy choice, so eval metrics score real
decoding. Outputs {'logits': [B, T, num_classes], 'attention': [B, T, S]} (no 'attention' without it).
"""

import flax.linen as nn
import jax.numpy as jnp

from jaxnets.data.specs import EOS_ID
from jaxnets.models.recurrent import CELLS

gru = CELLS.get('gru')
START = EOS_ID  # The decoder's first input token: '<eos>', the end of the sequence before this one.
ATTENTION = ('none', 'additive', 'dot')


class Attention(nn.Module):
  """Scores of a query against every source step: additive v^T tanh(W q + U k) (Bahdanau) or the dot
  product q . (U k) (Luong's 'general' score); softmax over the valid steps."""
  kind: str
  features: int

  @nn.compact
  def __call__(self, query, keys, projected, valid):
    """query [B, F], keys [B, S, K] and their projection U k [B, S, F] (computed once per sequence, not
    per step), valid [B, S] -> (context [B, K], weights [B, S])."""
    if self.kind == 'additive':
      hidden = jnp.tanh(projected + nn.Dense(self.features, name='query')(query)[:, None, :])
      scores = nn.Dense(1, use_bias=False, name='v')(hidden)[..., 0]
    else:
      scores = jnp.einsum('bf,bsf->bs', query, projected)
    weights = nn.softmax(jnp.where(valid, scores, -jnp.inf), axis=-1)
    return jnp.einsum('bs,bsk->bk', weights, keys), weights


class Seq2Seq(nn.Module):
  """Encoder-decoder over token ids; `attention` 'none', 'additive' or 'dot'. num_classes is the output
  vocabulary (the dataset's targets), vocab_size the source's."""
  num_classes: int = 12
  vocab_size: int = 12
  features: int = 128
  embed_dim: int = 32
  attention: str = 'additive'

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.attention not in ATTENTION:
      raise ValueError(f'seq2seq attention={self.attention!r}; valid choices: {", ".join(ATTENTION)}')
    source, length, targets = x['inputs'], x['length'], x['targets']
    valid = jnp.arange(source.shape[1])[None, :] < length[:, None]
    embedded = nn.Embed(self.vocab_size, self.embed_dim, name='source_embed')(source)
    (forward, backward), keys = nn.Bidirectional(
        nn.RNN(gru(self.features, parent=None), parent=None),
        nn.RNN(gru(self.features, parent=None), parent=None), return_carry=True,
        name='encoder')(embedded, seq_lengths=length)
    keys = jnp.where(valid[..., None], keys, 0)
    carry = nn.tanh(nn.Dense(self.features, name='bridge')(jnp.concatenate([forward, backward], -1)))
    cell = gru(self.features, name='decoder')
    target_embed = nn.Embed(self.num_classes, self.embed_dim, name='target_embed')
    attend = None
    if self.attention != 'none':
      attend = Attention(self.attention, self.features, name='attention')
      projected = nn.Dense(self.features, use_bias=False, name='attention_keys')(keys)
    readout = nn.Dense(self.num_classes, name='readout')
    token = jnp.full(source.shape[:1], START, jnp.int32)
    logits, weights = [], []
    for t in range(targets.shape[1]):
      step_input = target_embed(token)
      if attend is not None:
        context, w = attend(carry, keys, projected, valid)
        step_input = jnp.concatenate([step_input, context], -1)
        weights.append(w)
      carry, out = cell(carry, step_input)
      logits.append(readout(jnp.concatenate([out, context], -1) if attend is not None else out))
      token = targets[:, t] if train else jnp.argmax(logits[-1], -1).astype(jnp.int32)
    outputs = {'logits': jnp.stack(logits, axis=1)}
    if weights:
      outputs['attention'] = jnp.stack(weights, axis=1)
    return outputs


ENTRIES = {'seq2seq': Seq2Seq}
