"""jaxnets: the classic results of deep learning as pure functional JAX/Flax code."""
