"""tfsuite.export: one model in, versioned and validated variants out.

Modules by concern: ``loading`` (frozen graph / SavedModel / Keras -> one frozen GraphDef),
``signatures`` (inputs, outputs, kind), ``transforms`` / ``batchnorm`` / ``quantize`` (graph
rewrites), ``trt`` (TF-TRT), ``saving`` (TF Serving SavedModel), ``validate`` (against the
source graph), ``variants`` (builder table), ``basepath`` (numbering, atomic publish),
``api`` (``export_variants``), ``report`` (progress + table), ``inspection`` / ``freezing``,
``cli`` (click commands), ``manifest`` (the ``variants.json`` contract), ``paths`` (where a
command may write), ``errors``; ``examples*`` build the bundled models. Files and version
directories are written through :mod:`tfsuite.atomic`.
Nothing here imports TensorFlow at package import time.
"""
