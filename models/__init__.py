"""Bundled model assets (installed as ``edge.bundled``): the manifest and the Kinetics-400 labels."""
