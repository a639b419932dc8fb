"""The stack's building blocks, one construct per concern (named ``parts`` so ``import constructs`` stays the
PyPI package)."""
