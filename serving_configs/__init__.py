"""TF Serving config files, read and written with the TF Serving protos.

Modules, one per file kind:

- ``model_config``: ``--model_config_file`` (``ModelServerConfig`` text proto)
- ``batching``: ``--batching_parameters_file`` / per-version ``batching_params.pbtxt``
  (``BatchingParameters``, defined in-project: tensorflow-serving-api does not ship it)
- ``monitoring``: ``--monitoring_config_file`` (``MonitoringConfig``, defined in-project too)
- ``warmup``: ``<version>/assets.extra/tf_serving_warmup_requests`` (TFRecord of ``PredictionLog``)
- ``cli``: ``tfsuite configs``

Every failure is a ``tfsuite.serving_configs.errors.ConfigError`` worded like TF Serving's.
"""
