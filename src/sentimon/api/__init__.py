"""HTTP layer: routes, error rendering, middleware."""
