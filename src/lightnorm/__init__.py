"""lightnorm: generate, verify and cost LightNorm-style batch-normalization hardware."""

__version__ = "0.1.0"
