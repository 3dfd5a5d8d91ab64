"""The design backends behind ``lightnorm_top``."""
