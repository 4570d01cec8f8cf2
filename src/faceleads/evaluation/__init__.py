"""faceleads.evaluation package."""
