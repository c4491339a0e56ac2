"""Sentiment models: the backend interface, label and text normalisation, loading."""
