"""GameLens: store a games CSV from a link and explore it with ClickHouse."""

__version__ = "0.1.0"
