"""Model-card templates and per-model card data (package data; rendered by ``zoo.cards``)."""

from importlib.resources import files
from pathlib import Path


def cards_dir() -> Path:
    return Path(str(files(__name__)))
