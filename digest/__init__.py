"""paper-digest: a daily email of the new research papers that matter to each subscriber."""

__version__ = "0.1.0"
