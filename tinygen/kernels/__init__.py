"""Hand-written kernels, one per file: forward and backward derived by hand (see docs/kernels/)."""
