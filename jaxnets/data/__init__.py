"""Datasets: whole splits as dicts of arrays in host memory or memory-mapped, deterministic batches."""

from jaxnets.data import catalog  # noqa: F401 (registers every dataset)
from jaxnets.data.source import (DatasetUnavailableError, Tfds, channel_stats, clear_cache, load, num_examples,
                                 resolve_data_dir, take)
from jaxnets.data.specs import MASK_IGNORE, DatasetSpec, names, spec
from jaxnets.data.subsets import class_names, keep_classes, label_subset
