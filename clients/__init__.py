"""tfsuite.clients."""
