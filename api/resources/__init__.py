"""One blueprint per resource of the Compute v1 API."""
