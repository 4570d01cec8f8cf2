"""faceleads.cli package."""
