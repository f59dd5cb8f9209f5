"""Datasets for jaxnets: whole splits in host memory, augmentation on device, deterministic batches."""

from jaxnets.data.source import Arrays, DatasetUnavailableError, clear_cache, load, resolve_data_dir
from jaxnets.data.specs import DatasetSpec, names, spec
