"""faceleads.security package."""
