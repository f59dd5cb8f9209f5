"""Layer-level building blocks shared by the model families."""
