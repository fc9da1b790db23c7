"""wwmdistill: distil Chinese whole-word-masking BERT teachers into small students."""

__version__ = "0.1.0"
