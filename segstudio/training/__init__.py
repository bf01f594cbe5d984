"""The training engine: train from scratch, fine-tune on corrections, in the background. No Qt.

- ``engine``: ``train(config, data, cancel)`` → iterator of ``TrainEvent`` (the loop).
- ``config``: ``TrainConfig`` and the suggested recipes (``small_data_recipe``, ``scratch_recipe``).
- ``data``: ``TrainData`` / ``Sample``; data specs ``ProjectData`` and ``FolderData`` and ``load_data``.
- ``augment``: random scale/rotation/flips/crop as one affine warp (OpenCV or ``grid_sample``), jitter.
- ``batches``: deterministic, resumable batches on the CPU (threads) or on the device (CUDA).
- ``losses``: cross-entropy, focal, Dice, OHEM, weighted sums; ``SegLoss`` applies them per NetSpec.
- ``schedule``: warm-up + poly/cosine as a function of progress; staged crops and losses.
- ``netsetup``: head rebuilt for new classes, the encoder, EMA.
- ``run_state``, ``outputs``, ``curves``: what a run keeps and writes (model versions, checkpoint, log, PNG).
- ``evaluate``: validation scores and ``evaluate_on_corrections`` (the per-round quality report).
- ``process``: ``start_training_process`` — a run in a separate process, events over a pipe.
- ``distributed``: a run on several processes under torchrun (DDP), the batch rule, rank-0-only writes.
"""
