"""Shared test set-up: quiet TensorFlow, threads for forced host devices (before JAX starts), and no data
cached across tests that swap it (mock_data)."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from jaxnets import xla_env  # noqa: E402

xla_env.configure()

import pytest  # noqa: E402

from jaxnets import data  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_data_cache():
  data.clear_cache()
  yield
  data.clear_cache()
