"""The human-in-the-loop layer: a project and its models, without Qt (between ``training`` and ``gui``).

What the app does with a project, as plain Python that the app, the command
line and the benchmarks all drive:

- ``model_choice``: the active model (a file), backends, class fitting, loading.
- ``startpoint``: where a training run starts (fine-tune a file or its twin, a network from scratch) and
  the recipe for it.
- ``project_training``: one run of the project — start, events, and what its end means.
- ``rounds``: each round's models scored on the held-out corrections, judged, recorded.
- ``guard``: never silently worse — whether a new version may become active.
- ``versions``: the model versions trained in the project, where each came from.
- ``segmenting``, ``uncertainty``: segmenting the project's images, the uncertainty maps and ranking.
- ``document``, ``pyramid``: one open image (pixels, pyramid, edit session, save state).
- ``project_session``, ``document_cache``: the project the app has open, its open images within a memory bound.

The held-out split itself lives in :mod:`segstudio.core.holdout` (the training
engine reads it too). Torch is imported only where training is started or a
recipe is built.
"""
