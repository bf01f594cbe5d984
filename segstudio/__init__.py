"""segstudio: semantic segmentation with a human in the loop.

This module holds the version only; it imports neither Qt nor torch, so that
``import segstudio`` is cheap for every sub-package and tool.
"""

__version__ = "0.1.0"
