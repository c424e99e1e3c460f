"""tfsuite.server."""
