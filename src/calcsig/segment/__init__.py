"""Calcification segmentation: breast region, HDoG candidates, selector, evaluation."""

from calcsig.segment.stage import evaluate_segmentation_files, segment_image, segment_image_file, train_selector_files

__all__ = ["segment_image", "segment_image_file", "train_selector_files", "evaluate_segmentation_files"]
