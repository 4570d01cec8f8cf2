"""faceleads.web package."""
