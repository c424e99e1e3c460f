"""tfsuite.export."""
