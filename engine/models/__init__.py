"""Model files: GGUF inspection without loading weights (``gguf``), and finding models."""
