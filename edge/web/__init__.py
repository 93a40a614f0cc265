"""The HTTP API, metrics endpoint and live page of the service (``app``); see ``edge.web.app``."""
