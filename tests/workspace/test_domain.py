"""The domain warning: far above the card's validation uncertainty (or, without one, plainly unsure)."""

from __future__ import annotations

from segstudio.core.classes import ClassTable
from segstudio.workspace.domain import domain_warning
from segstudio.zoo import ModelCard
from segstudio.zoo.card import UNCERTAINTY_METRIC


def card(reference: float | None) -> ModelCard:
    metrics = [{"name": UNCERTAINTY_METRIC, "value": reference, "data": "validation: CamVid val"}] \
        if reference is not None else []
    return ModelCard(arch="unet", classes=ClassTable.from_names(["a", "b"]), metrics=metrics, name="camvid")


def test_far_above_the_cards_value_warns_and_suggests_training() -> None:
    text = domain_warning(card(0.1), [0.5, 0.6, 0.55], 10)
    assert text is not None and "0.55 on 3 of these images" in text and "0.10 on its own validation" in text
    assert "fine-tune" in text and text.startswith("camvid")


def test_near_the_cards_value_or_too_few_images_says_nothing() -> None:
    assert domain_warning(card(0.1), [0.2, 0.2, 0.2], 10) is None  # under 0.1 + margin
    assert domain_warning(card(0.1), [0.9, 0.9], 10) is None  # two images are too few to judge …
    assert domain_warning(card(0.1), [0.9, 0.9], 2) is not None  # … unless the project has no more
    assert domain_warning(card(0.1), [], 0) is None


def test_a_card_without_the_value_is_judged_against_a_plain_limit() -> None:
    assert domain_warning(card(None), [0.3, 0.35, 0.4], 5) is None
    text = domain_warning(card(None), [0.7, 0.8, 0.75], 5)
    assert text is not None and "records no value" in text
