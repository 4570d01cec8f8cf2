"""faceleads.gallery package."""
