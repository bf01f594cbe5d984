"""Turning a network into segmentations: model files, the predictor, ONNX export, batch folders.

Nothing here imports torch at import time; torch is loaded only by the modules
that need it (``torch_backend``, ``export``, ``checkpoint``) or inside the
functions that do (``model_file.save_model`` / ``load_model``), so that ONNX
inference works where torch is not installed.

- ``model_file``: ``ModelFile`` (a file's format, header and card, read once), ``save_model``, ``load_card``
  (no torch), ``load_model``, model-file facts.
- ``checkpoint``: ``import_checkpoint`` of a foreign state dict, with its ``ImportReport``.
- ``export`` / ``parity``: ONNX export verified against PyTorch before it is written.
- ``predictor``: ``Predictor.from_file(...).predict(image)`` → ``Prediction``; tiling, TTA, cancel.
- ``backends``: the backend registry — engines, devices, the app's choices, what runs a model file and
  why nothing can (``decide``); ``open_backend`` carries the decision out.
- ``onnx_cache``: the cache of ONNX exports made on the fly for ``.safetensors`` models.
- ``backend``, ``torch_backend``, ``onnx_backend``: the network runners.
- ``tiling``: windows and blending weights for large images.
- ``batch``: ``segment_folder`` — pipelined, resumable batch segmentation as progress events.
- ``ray_batch``: ``segment_on_ray`` — the same work spread over the actors of a Ray cluster (Ray Data).
"""
