"""faceleads.vision package."""
