"""Model adapters. One file per model family behind the `VisionLanguageBackend` interface."""
