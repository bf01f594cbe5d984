"""A domain warning: the open images may be unlike anything the model was trained on.

A model that meets images of another kind (EM slices given to a street-scene
model) still labels every pixel, but far less surely. Its card records the mean
uncertainty (normalised entropy) on its own validation images
(:data:`~segstudio.zoo.card.UNCERTAINTY_METRIC`); when the mean over the open
images it has segmented is far above that — at least :data:`FACTOR` times it
and :data:`MARGIN` more — :func:`domain_warning` says so and suggests training.
A card that records no such value (older models) is compared with
:data:`FALLBACK_LIMIT`, a mean at which a model is unsure of most pixels.
The window says it once per project and model. Qt-free.
"""

from __future__ import annotations

from collections.abc import Sequence

from segstudio.zoo import ModelCard
from segstudio.zoo.card import UNCERTAINTY_METRIC

FACTOR = 2.0
MARGIN = 0.15
FALLBACK_LIMIT = 0.5
MIN_IMAGES = 3
"""Fewer segmented images than this (unless the project has no more) are too few to judge."""


def domain_warning(card: ModelCard, scores: Sequence[float], project_images: int) -> str | None:
    """A few sentences for people when the model's mean uncertainty on ``scores`` (one mean per segmented
    image) is far above its card's validation value; None when it is not, or when too few images are scored."""
    if not scores or len(scores) < min(MIN_IMAGES, project_images):
        return None
    mean = sum(scores) / len(scores)
    reference = card.metric(UNCERTAINTY_METRIC)
    name = card.name or card.arch
    if reference is not None:
        limit = max(reference * FACTOR, reference + MARGIN)
        if mean <= limit:
            return None
        compared = f"{mean:.2f} on {len(scores)} of these images, against {reference:.2f} on its own validation data"
    else:
        if mean <= FALLBACK_LIMIT:
            return None
        compared = (f"{mean:.2f} on {len(scores)} of these images (0 is sure, 1 is a guess; its card records no "
                    "value for its own validation data)")
    return (f"{name} is much less sure on these images than on the images it was trained for: mean uncertainty "
            f"{compared}. They may be unlike anything it has seen, so its labels may be wrong throughout. Label a "
            "few images by hand and fine-tune it on them (Fine-tune panel), or train a network from the zoo.")
