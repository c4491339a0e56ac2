"""Admission control and the inference worker between the routes and the model."""
