"""Verification models: the float64 ideal model and the bit-exact golden model."""
