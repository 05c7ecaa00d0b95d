"""Hand-written kernels, one per file (a convolution and its adjoint share ``conv.py``): forward and
backward derived by hand (see docs/kernels/)."""
