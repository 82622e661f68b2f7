"""Text-conditioned GAN: data and conditions, training, generation, evaluation, CLI."""
from __future__ import annotations


class GanError(ValueError):
    """A problem with a GAN input (folder, checkpoint, run) that the user can act on."""
