"""The one training loop every task uses, and its parts: state, steps, sharding, checkpoints, logs."""
