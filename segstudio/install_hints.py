"""How to install what an optional feature needs: the exact commands, in one place.

README.md gives the same lines (a test checks that they agree), and every error that says
"PyTorch is not installed" ends with :func:`torch_hint`, so what a user is told to type is
what the README says. Standard library only.
"""

from __future__ import annotations

TORCH_CPU = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
"""PyTorch's CPU build (about 200 MB; PyPI's default Linux wheel is the CUDA build, several GB)."""

TORCH_CUDA = "pip install torch --index-url https://download.pytorch.org/whl/cu128"
"""PyTorch for an NVIDIA GPU (CUDA 12.8; pytorch.org lists the index for other CUDA versions)."""

SEGSTUDIO_TORCH = "pip install 'segstudio[torch]'"
"""segstudio's torch extra, once PyTorch itself is installed."""

CLUSTER = "pip install 'segstudio[cluster]'"


def torch_hint() -> str:
    """One line: the two ways to install PyTorch, then the extra."""
    return (f"install PyTorch first — CPU only: {TORCH_CPU}; with an NVIDIA GPU: {TORCH_CUDA} — "
            f"then {SEGSTUDIO_TORCH}")
