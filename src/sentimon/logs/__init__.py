"""Structured JSON logs carrying the request id."""
