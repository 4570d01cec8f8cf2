"""faceleads: retrospective facial recognition that produces investigative leads, never identifications."""

__version__ = "0.1.0"
