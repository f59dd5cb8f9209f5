"""Shared test set-up: torchvision imported before TensorFlow, quiet TensorFlow, threads for forced host devices
(before JAX starts), and no data cached across tests that swap it (mock_data)."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

# torchvision (the weight-import tests) before TensorFlow: the torch build these machines install ships triton,
# whose import crashes the process once TensorFlow is loaded, and is harmless before it.
try:
  import torchvision  # noqa: E402, F401
except (ImportError, RuntimeError):  # Not installed, or a mismatched pair: test_torch_import says which.
  pass

from jaxnets import xla_env  # noqa: E402

xla_env.configure()

import pytest  # noqa: E402

from jaxnets import data  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_data_cache():
  data.clear_cache()
  yield
  data.clear_cache()
