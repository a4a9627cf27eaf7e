"""Dataset readers and writers (COCO, Pascal VOC, LabelMe) over a neutral in-memory model.

Pure Python, no Django: the import/export jobs call these functions with files on disk.
"""

from __future__ import annotations

from ml.formats.archive import detect_format, find_dataset_root, iter_files, safe_extract
from ml.formats.coco import CocoWriteStats, find_coco_images_dir, read_coco, write_coco, write_coco_results
from ml.formats.labelme import read_labelme, write_labelme
from ml.formats.model import Dataset, DatasetImage, DatasetInstance, FormatError
from ml.formats.voc import VOC_CLASSES, VocWriteStats, read_voc, voc_colormap, write_voc

__all__ = [
    "VOC_CLASSES",
    "CocoWriteStats",
    "Dataset",
    "DatasetImage",
    "DatasetInstance",
    "FormatError",
    "VocWriteStats",
    "detect_format",
    "find_coco_images_dir",
    "find_dataset_root",
    "iter_files",
    "read_coco",
    "read_labelme",
    "read_voc",
    "safe_extract",
    "voc_colormap",
    "write_coco",
    "write_coco_results",
    "write_labelme",
    "write_voc",
]
