"""``edge-har learn``: a site's own activities as a head on the model's pooled feature (``edge.learn.learn``)."""

from edge.learn.data import LearnError
from edge.learn.learn import learn, summary

__all__ = ["LearnError", "learn", "summary"]
