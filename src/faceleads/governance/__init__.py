"""faceleads.governance package."""
