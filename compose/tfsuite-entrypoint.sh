#!/bin/bash
# The suite image's entrypoint, shaped like tensorflow/serving's tf_serving_entrypoint.sh:
# arguments that start with "--" are model-server flags, so the image is a drop-in for
#   docker run tensorflow/serving --model_config_file=/models/models.config ...
# and runs `tfsuite serve` with the same prepended flags TF Serving's entrypoint adds
# (--port=8500 --rest_api_port=8501 --model_name --model_base_path), plus --host=0.0.0.0
# (tfsuite serve binds 127.0.0.1 unless told otherwise). Later flags win, as in TF Serving.
# Anything else is run as a command: `locust ...`, `export-variants ...`, `tfsuite ...`.
set -e
if [ "$#" -eq 0 ] || [ "${1#--}" != "$1" ]; then
  exec tfsuite serve --host=0.0.0.0 --port=8500 --rest_api_port=8501 \
    --model_name="${MODEL_NAME}" --model_base_path="${MODEL_BASE_PATH}/${MODEL_NAME}" "$@"
fi
exec "$@"
