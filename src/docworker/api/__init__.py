"""The HTTP API: application factory, routes, errors, dependencies."""
