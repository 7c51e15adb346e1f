"""Datasets at scale: sharded, resumable, exactly-once generation (local processes or Ray) and
folder-wide photo processing with the same resume / failure-report semantics."""

from __future__ import annotations

from .folders import FolderReport, map_folder
from .generate import DatasetReport, generate_dataset
from .shards import DatasetError, DatasetSettingsError, Manifest, parse_seed_ranges, plan_shards

__all__ = ["generate_dataset", "DatasetReport", "DatasetError", "DatasetSettingsError", "Manifest",
           "parse_seed_ranges", "plan_shards", "map_folder", "FolderReport"]
