"""tfsuite.serving_configs."""
