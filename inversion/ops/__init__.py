"""Low-level tensor operations (kernels), kept apart from the modules that use them."""
