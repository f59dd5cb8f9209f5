"""Weights from other frameworks as jaxnets variables (torchvision's in jaxnets.weights.torchvision)."""
