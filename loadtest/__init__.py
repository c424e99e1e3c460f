"""tfsuite.loadtest."""
