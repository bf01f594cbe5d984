"""The training engine: train from scratch or fine-tune on corrections (no Qt)."""
