"""edge-har: human activity recognition on video, on an edge box."""

__version__ = "0.2.0"
