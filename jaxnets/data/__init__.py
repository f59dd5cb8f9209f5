"""Datasets: whole splits in host memory or memory-mapped, augmented on device, deterministic batches."""

from jaxnets.data.source import (Arrays, DatasetUnavailableError, channel_stats, clear_cache, load,
                                 resolve_data_dir)
from jaxnets.data.specs import DatasetSpec, names, spec
