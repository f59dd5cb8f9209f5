"""Image generators' evaluation without downloads: scores from jaxnets' own Fashion-MNIST classifier."""
