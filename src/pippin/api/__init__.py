"""Pippin's REST API (``/api/v1``) and its health check, served by `pippin serve`."""
