"""faceleads.casework package."""
