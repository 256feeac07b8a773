"""Training (``python -m cinemagraph.train experiment=NAME [overrides]``): Hydra-configured
loops for the learned components. This version trains the motion network (:mod:`.motion`)."""
