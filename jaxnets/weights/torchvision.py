"""torchvision weights as the variables of jaxnets' ResNet, VGG, AlexNet and DenseNet models of the same name.

So a Flax model can start from torchvision's pretrained weights. Each family has an explicit name map
(jaxnets path -> torch name) built from the model's own tables, as n2cholas/jax-resnet does; tests feed
randomly initialized torchvision models through it and compare the logits, so no download is needed.

    variables = model.init(key, images, train=False)  # model = models.create(name, **MODEL_KWARGS.get(name, {}))
    variables = convert(name, read_state_dict('resnet50.pth'), variables)
"""

import collections
import math
import re
from pathlib import Path

import numpy as np
from flax import traverse_util

from jaxnets.models import densenet, resnet, stack, vgg

SUFFIXES = ('.pth', '.pt', '.safetensors')
# create() arguments under which a jaxnets model computes what its torchvision namesake does: torchvision's
# bottleneck ResNets stride the 3x3 ('v1.5'), jaxnets' default is the paper's 'v1' (same parameters).
MODEL_KWARGS = {f'resnet{depth}': {'version': 'v1.5'} for depth, (block, _) in resnet.IMAGENET_STACKS.items()
                if block is resnet.BottleneckBlock}
# The jaxnets models convert() loads: torchvision's ResNets, VGGs, AlexNet and DenseNets, by their names.
MODELS = (*(f'resnet{depth}' for depth in resnet.IMAGENET_STACKS), *vgg.ENTRIES, 'alexnet',
          *(name for name in densenet.ENTRIES if name != 'densenet'))
_SCANNED_PATH = re.compile(rf'(\w+)/(\w+)_blocks/{stack.SCANNED_INNER}/(.+)')  # A leaf stacking blocks 1..n-1.
# torchvision's published DenseNet weights use its old names, 'denselayer1.norm.1.weight' for '...norm1.weight'.
_OLD_DENSENET_NAME = re.compile(r'(.*denselayer\d+\.(?:norm|relu|conv))\.'
                                r'([12]\.(?:weight|bias|running_mean|running_var))')


def read_state_dict(path) -> dict[str, np.ndarray]:
  """The tensors of a torch .pth / .pt state dict or of a .safetensors file, as numpy arrays.

  torch's floating tensors come as float32 (numpy has no bfloat16); the file's other entries as they are.
  """
  path = Path(path)
  if path.suffix == '.safetensors':
    try:
      from safetensors.numpy import load_file
    except ImportError:
      raise ImportError(f'reading {path} needs safetensors: pip install safetensors') from None
    return load_file(path)
  if path.suffix not in SUFFIXES:
    raise ValueError(f'cannot read weights from {path}: valid suffixes are {", ".join(SUFFIXES)}')
  try:
    import torch
  except ImportError:
    raise ImportError(f'reading {path} needs PyTorch: pip install torch '
                      '(the CPU build will do: --index-url https://download.pytorch.org/whl/cpu)') from None
  state = torch.load(path, map_location='cpu', weights_only=True)
  if not isinstance(state, dict):
    raise ValueError(f'{path} holds a {type(state).__name__}, not a state dict of tensors')
  return {name: (t.float() if t.is_floating_point() else t).numpy() for name, t in state.items()}


def convert(model_name: str, state_dict, variables, keep: str = '') -> dict:
  """`variables` (model.init's, or jax.eval_shape's of it) with each leaf replaced by its torch tensor, in float32.

  `state_dict` maps torchvision's names to numpy arrays (or CPU torch tensors); its BatchNorm
  num_batches_tracked counters have no jaxnets counterpart and are ignored. `keep` is a regex: template
  leaves whose path ('params/head/kernel', in the template's own layout) it fully matches are returned as
  they are, neither loaded nor required, and torch tensors meant for them are ignored; keep='params/head/.*'
  loads a backbone under a head of the template's own num_classes. A tensor left unused, a leaf left
  without a tensor, or a shape mismatch raises a ValueError naming them. ResNet-50/101/152 compute
  torchvision's function only when built with MODEL_KWARGS (version='v1.5').
  """
  names, flattened = _name_map(model_name)
  renamed = [(_current_name(name), x) for name, x in state_dict.items()
             if not name.endswith('num_batches_tracked')]
  tensors = dict(renamed)
  template = {'/'.join(key): leaf for key, leaf in traverse_util.flatten_dict(variables).items()}
  wanted = {path: [names.get(p) for p in _unrolled(path, leaf)] for path, leaf in template.items()}
  kept = {path for path in template if keep and re.fullmatch(keep, path)}
  problems = []
  if len(tensors) < len(renamed):
    twice = [name for name, count in collections.Counter(name for name, _ in renamed).items() if count > 1]
    problems.append(f'torch tensors given under both their old and new names: {_listing(twice)}')
  unused = sorted(set(tensors) - {name for path_names in wanted.values() for name in path_names})
  if unused:
    problems.append(f'torch tensors with no jaxnets leaf: {_listing(unused)}')
  missing = list(dict.fromkeys(f'{path} ({name})' if name else path for path in template if path not in kept
                               for name in wanted[path] if name not in tensors))
  if missing:
    problems.append(f'jaxnets leaves with no torch tensor: {_listing(missing)}')
  if problems:
    raise ValueError(f'cannot load torch weights into {model_name}: {"; ".join(problems)}')
  loaded, mismatches = {}, []
  for path, leaf in template.items():
    if path in kept:
      continue
    stacked = _SCANNED_PATH.fullmatch(path) is not None
    shape = tuple(leaf.shape[1:] if stacked else leaf.shape)
    arrays = [_flax_layout(tensors[name]) for name in wanted[path]]
    bad = [f'{name} {tuple(np.shape(tensors[name]))} (as {x.shape}) for {path} {tuple(leaf.shape)}'
           for name, x in zip(wanted[path], arrays) if x.shape != shape]
    mismatches += bad
    if not bad:
      if path in flattened:
        arrays = [_hwc_rows(x, template[flattened[path]].shape[-1]) for x in arrays]
      loaded[path] = np.stack(arrays) if stacked else np.ascontiguousarray(arrays[0])
  if mismatches:
    raise ValueError(f'cannot load torch weights into {model_name}: shape mismatches: {_listing(mismatches)}')
  return traverse_util.unflatten_dict({key: loaded.get('/'.join(key), leaf) for key, leaf in
                                       traverse_util.flatten_dict(variables).items()})


def _listing(items, limit: int = 8) -> str:
  """The first `limit` items, comma-separated, and how many there are in all when that is more."""
  return ', '.join(items[:limit]) + (f', ... ({len(items)} in all)' if len(items) > limit else '')


def _current_name(name: str) -> str:
  """torchvision's current name for a tensor of its old DenseNet checkpoints; other names unchanged."""
  m = _OLD_DENSENET_NAME.fullmatch(name)
  return m[1] + m[2] if m else name


def _unrolled(path: str, leaf) -> list[str]:
  """The unrolled paths a template leaf holds: itself, or stageK_block1..n-1 of a scanned stage (models.stack)."""
  m = _SCANNED_PATH.fullmatch(path)
  if not m:
    return [path]
  collection, stage, rest = m.groups()
  return [f'{collection}/{stage}_block{j}/{rest}' for j in range(1, leaf.shape[0] + 1)]


def _flax_layout(x) -> np.ndarray:
  """A torch tensor in Flax's layout, as float32: conv OIHW -> HWIO, linear [out, in] -> [in, out]."""
  x = np.asarray(x, np.float32)
  if x.ndim == 4:
    return x.transpose(2, 3, 1, 0)
  return x.T if x.ndim == 2 else x


def _hwc_rows(kernel: np.ndarray, channels: int) -> np.ndarray:
  """A dense kernel's rows reordered from torch's (C, H, W) flatten of a square map to Flax's (H, W, C)."""
  side = math.isqrt(kernel.shape[0] // channels)
  if side * side * channels != kernel.shape[0]:
    raise ValueError(f'a dense kernel of {kernel.shape[0]} rows does not read a square map of {channels} channels')
  return kernel.reshape(channels, side, side, -1).transpose(1, 2, 0, 3).reshape(kernel.shape)


def _name_map(model_name: str) -> tuple[dict, dict]:
  """(unrolled jaxnets path -> torch name, kernel path of each dense layer reading a flattened map -> the
  kernel path of the convolution whose channels it reads)."""
  if model_name not in MODELS:
    raise ValueError(f'no torchvision weights map for model {model_name!r}; valid choices: {", ".join(MODELS)}')
  if model_name == 'alexnet':
    return _alexnet_names(), {'params/fc6/kernel': 'params/conv5/kernel'}
  fixed = (resnet.ENTRIES | vgg.ENTRIES | densenet.ENTRIES)[model_name].keywords
  if model_name.startswith('resnet'):
    return _resnet_names(fixed['depth']), {}
  if model_name.startswith('vgg'):
    last = f'params/stage5_block{vgg.STAGE_DEPTHS[fixed["depth"]][-1] - 1}/conv/kernel'
    return _vgg_names(fixed['depth'], fixed['batch_norm']), {'params/fc6/kernel': last}
  return _densenet_names(fixed['block_config']), {}


def _dense(path: str, torch_name: str, bias: bool = True) -> dict:
  """A convolution's or dense layer's kernel (and bias)."""
  names = {f'params/{path}/kernel': f'{torch_name}.weight'}
  return {**names, f'params/{path}/bias': f'{torch_name}.bias'} if bias else names


def _bn(path: str, torch_name: str) -> dict:
  """A BatchNorm's scale and bias (params) and running averages (batch_stats)."""
  return {f'params/{path}/scale': f'{torch_name}.weight', f'params/{path}/bias': f'{torch_name}.bias',
          f'batch_stats/{path}/mean': f'{torch_name}.running_mean',
          f'batch_stats/{path}/var': f'{torch_name}.running_var'}


def _conv_bn(path: str, conv: str, bn: str) -> dict:
  """jaxnets' ConvBN or BNActConv unit (a bias-free conv `conv`, a BatchNorm `bn`)."""
  return {**_dense(f'{path}/conv', conv, bias=False), **_bn(f'{path}/bn', bn)}


def _resnet_names(depth: int) -> dict:
  """torchvision's ResNet: conv1/bn1, layerK.J.convI/bnI (+ downsample.0/.1), fc."""
  block, stage_sizes = resnet.IMAGENET_STACKS[depth]
  convs = 3 if block is resnet.BottleneckBlock else 2
  names = {**_conv_bn('stem', 'conv1', 'bn1'), **_dense('head', 'fc')}
  for k, n in enumerate(stage_sizes, 1):
    for j in range(n):
      ours, theirs = f'stage{k}_block{j}', f'layer{k}.{j}'
      for i in range(1, convs + 1):
        names |= _conv_bn(f'{ours}/branch/conv{i}', f'{theirs}.conv{i}', f'{theirs}.bn{i}')
      if j == 0 and (k > 1 or convs == 3):  # The block changes the shape: a projection shortcut (option B).
        names |= _conv_bn(f'{ours}/shortcut/proj', f'{theirs}.downsample.0', f'{theirs}.downsample.1')
  return names


def _vgg_names(depth: int, batch_norm: bool) -> dict:
  """torchvision's VGG: features.I (conv, [BN,] ReLU per layer, a max pool per stage), classifier.0/3/6."""
  names, i = {}, 0
  for k, convs in enumerate(vgg.STAGE_DEPTHS[depth], 1):
    for j in range(convs):
      names |= _dense(f'stage{k}_block{j}/conv', f'features.{i}')
      if batch_norm:
        names |= _bn(f'stage{k}_block{j}/bn', f'features.{i + 1}')
      i += 3 if batch_norm else 2
    i += 1
  return names | _dense('fc6', 'classifier.0') | _dense('fc7', 'classifier.3') | _dense('head', 'classifier.6')


def _alexnet_names() -> dict:
  """torchvision's AlexNet: features.0/3/6/8/10 (convs among ReLUs and pools), classifier.1/4/6."""
  names = {}
  for i, index in enumerate((0, 3, 6, 8, 10), 1):
    names |= _dense(f'conv{i}', f'features.{index}')
  return names | _dense('fc6', 'classifier.1') | _dense('fc7', 'classifier.4') | _dense('head', 'classifier.6')


def _densenet_names(block_config: tuple) -> dict:
  """torchvision's DenseNet: features.conv0/norm0, denseblockB.denselayerL.norm1/conv1/norm2/conv2,
  transitionB.norm/conv, norm5, classifier."""
  names = {**_conv_bn('stem', 'features.conv0', 'features.norm0'), **_bn('final_norm', 'features.norm5'),
           **_dense('head', 'classifier')}
  for b, layers in enumerate(block_config, 1):
    for layer in range(1, layers + 1):
      ours, theirs = f'denseblock{b}/layer{layer}', f'features.denseblock{b}.denselayer{layer}'
      for i in (1, 2):
        names |= _conv_bn(f'{ours}/conv{i}', f'{theirs}.conv{i}', f'{theirs}.norm{i}')
    if b < len(block_config):
      names |= _conv_bn(f'transition{b}/conv', f'features.transition{b}.conv', f'features.transition{b}.norm')
  return names
