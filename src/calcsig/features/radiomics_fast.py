"""pyradiomics on per-object crops: the same numbers as a whole-ROI call, at a fraction of the cost.

For a segment-based extraction without filters (``kernelRadius`` 0, image type
``Original``), pyradiomics itself crops image and mask to the mask's bounding box
before computing any feature, so every feature depends only on the pixels of that
box. :class:`CroppedExtractor` therefore hands each feature class the bounding-box
crop directly and skips what a full ``RadiomicsFeatureExtractor.execute`` call
repeats for every object: parameter handling, a ``LabelStatisticsImageFilter``
pass over the whole mask, casts and crops of whole-ROI SimpleITK images, and the
per-instance feature-name discovery (``inspect.getmembers``). The parameter file
is read and validated once, by pyradiomics' own extractor, when the object is built.

Feature values are identical to ``RadiomicsFeatureExtractor.execute`` on the full
ROI (tests/test_features_radiomics.py and benchmarks/features.py check it).
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import radiomics
import SimpleITK as sitk
from radiomics import featureextractor, getFeatureClasses, imageoperations
from scipy import ndimage as ndi

SHAPE_CLASS = "shape2D"
FEATURE_CLASS_ORDER = ("shape2D", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")

# pyradiomics' root logger prints WARNING and above to stderr through its own
# handler; route everything through the normal logging tree instead, so that it
# lands in the rule's log file and nowhere else.
_radiomics_logger = logging.getLogger("radiomics")


def quiet_radiomics() -> None:
    """Send pyradiomics messages (WARNING and above) to the logging tree, not the console."""
    radiomics.setVerbosity(logging.CRITICAL + 10)
    _radiomics_logger.setLevel(logging.WARNING)
    _radiomics_logger.propagate = True


@dataclass
class ExtractionCounts:
    """What went wrong while extracting one family over one ROI (for the QC row)."""

    skipped_too_small: int = 0  # masks pyradiomics' checkMask would reject: all features NaN
    constant_intensity: int = 0  # masks with one gray level after discretisation
    nan_values: int = 0  # NaN feature values inside masks that were extracted
    messages: int = 0  # pyradiomics WARNING/ERROR log records
    nan_by_feature: dict[str, int] = field(default_factory=dict)


class _CountingHandler(logging.Handler):
    """Counts pyradiomics WARNING+ records emitted by the calling thread."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.count = 0
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.count += 1


# Key under which extract() passes the mask's discretised image to the feature
# classes (pyradiomics hands its settings to imageoperations functions as **kwargs,
# which ignore unknown keys).
_BINNED = "_calcsig_binned"


def _shared_binning(self, matrix):
    """pyradiomics' _applyBinning, computed once per mask instead of once per feature class.

    Every texture class (and firstorder) discretises the same image crop with the
    same settings; extract() runs ``imageoperations.binImage`` once and each class
    takes a copy, with the coefficients base._applyBinning would have set.
    """
    binned, gray_levels = self.settings[_BINNED]
    self.coefficients["grayLevels"] = gray_levels
    self.coefficients["Ng"] = int(np.max(gray_levels))
    return binned.copy()


def _cached_class(cls: type) -> type:
    """`cls` with its feature-name table computed once and the shared discretisation."""
    names = cls.getFeatureNames()
    sub = type(
        cls.__name__, (cls,), {"getFeatureNames": classmethod(lambda c: names), "_applyBinning": _shared_binning}
    )
    # feature classes log to logging.getLogger(self.__module__): keep their names
    sub.__module__ = cls.__module__
    return sub


class CroppedExtractor:
    """pyradiomics feature extraction on bounding-box crops, configured by a parameter file.

    Parameters
    ----------
    params_file : path of a pyradiomics YAML parameter file (2-D, ``Original``
        image type only, no resampling, no normalisation, no resegmentation: the
        settings for which cropping is exact; others are refused).
    prefix : prefix of the output names, e.g. ``"fg_"``.

    Output names are ``{prefix}{featureClass}_{Feature}``, e.g. ``fg_glcm_Contrast``.
    Thread-safe: :meth:`extract` keeps no state beyond its arguments.
    """

    def __init__(self, params_file: str | Path, prefix: str) -> None:
        quiet_radiomics()
        with warnings.catch_warnings():
            # pykwalify (pyradiomics' YAML validator) uses a deprecated importlib call
            warnings.simplefilter("ignore", DeprecationWarning)
            reference = featureextractor.RadiomicsFeatureExtractor(str(params_file))
        settings = dict(reference.settings)
        _refuse_crop_unsafe(settings, reference.enabledImagetypes, params_file)
        settings["label"] = 1
        self.settings = settings
        self.prefix = prefix
        self.params_file = Path(params_file)
        self.min_dims = int(settings.get("minimumROIDimensions", 2))
        self.min_size = settings.get("minimumROISize")
        classes = getFeatureClasses()
        self._classes: list[tuple[str, type, list[str]]] = []
        for name in FEATURE_CLASS_ORDER:
            if name not in reference.enabledFeatures:
                continue
            cls = classes[name]
            wanted = reference.enabledFeatures[name]
            if not wanted:  # None or []: all non-deprecated features, as pyradiomics does
                wanted = [f for f, deprecated in sorted(cls.getFeatureNames().items()) if not deprecated]
            self._classes.append((name, _cached_class(cls), list(wanted)))
        unknown = set(reference.enabledFeatures) - set(FEATURE_CLASS_ORDER)
        if unknown:
            raise ValueError(f"{params_file}: feature classes {sorted(unknown)} are not supported for 2-D objects")
        self.feature_names = [f"{prefix}{c}_{f}" for c, _, feats in self._classes for f in feats]

    def is_extractable(self, mask: np.ndarray) -> bool:
        """Whether pyradiomics' checkMask accepts `mask`.

        It never accepts one pixel, nor a mask spanning fewer dimensions than required.
        """
        n = int(np.count_nonzero(mask))
        if n == 0:
            return False
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        spanned = int(rows[-1] > rows[0]) + int(cols[-1] > cols[0])
        if spanned == 0 or spanned < self.min_dims:
            return False
        return self.min_size is None or n > int(self.min_size)  # checkMask rejects roiSize <= minimumROISize

    def extract(
        self, image: np.ndarray, mask: np.ndarray, spacing_mm: float, counts: ExtractionCounts | None = None
    ) -> np.ndarray:
        """Feature vector (order of :attr:`feature_names`) for one mask.

        `image` is a float64 array and `mask` a bool array of the same shape; any
        crop containing the mask's bounding box gives the same result. A mask that
        pyradiomics would reject (empty, one pixel, below ``minimumROIDimensions``
        or ``minimumROISize``) gives all NaN and is counted in `counts`.
        """
        out = np.full(len(self.feature_names), np.nan)
        counts = counts if counts is not None else ExtractionCounts()
        if not self.is_extractable(mask):
            counts.skipped_too_small += 1
            return out
        box = ndi.find_objects(mask.astype(np.uint8))[0]
        sub_mask = mask[box].astype(np.uint8)
        sub_image = np.ascontiguousarray(image[box], dtype=np.float64)
        sitk_image = sitk.GetImageFromArray(sub_image)
        sitk_mask = sitk.GetImageFromArray(sub_mask)
        spacing = (float(spacing_mm), float(spacing_mm))
        sitk_image.SetSpacing(spacing)
        sitk_mask.SetSpacing(spacing)
        values = sub_image[sub_mask.astype(bool)]
        if values.min() == values.max():  # one gray level: many texture features degenerate
            counts.constant_intensity += 1
        handler = _CountingHandler()
        _radiomics_logger.addHandler(handler)
        try:
            inside = sub_mask.astype(bool)
            binned, _ = imageoperations.binImage(sub_image.copy(), inside, **self.settings)
            settings = dict(self.settings)
            settings[_BINNED] = (binned, np.unique(binned[inside]))
            i = 0
            for _, cls, feats in self._classes:
                instance = cls(sitk_image, sitk_mask, **settings)
                for f in feats:
                    instance.enableFeatureByName(f)
                result = instance.execute()
                for f in feats:
                    value = result.get(f, math.nan)
                    out[i] = float(value)
                    i += 1
        finally:
            _radiomics_logger.removeHandler(handler)
        counts.messages += handler.count
        nan = np.isnan(out)
        counts.nan_values += int(nan.sum())
        for j in np.flatnonzero(nan):
            key = self.feature_names[j]
            counts.nan_by_feature[key] = counts.nan_by_feature.get(key, 0) + 1
        return out


def _refuse_crop_unsafe(settings: dict, image_types: dict, where) -> None:
    """Raise unless the settings are ones for which a bounding-box crop changes nothing."""
    problems = []
    if set(image_types) != {"Original"}:
        problems.append(f"image types {sorted(image_types)} (only Original: filters see beyond the mask)")
    if settings.get("normalize"):
        problems.append("normalize (uses whole-image statistics)")
    if settings.get("resampledPixelSpacing") is not None:
        problems.append("resampledPixelSpacing")
    if settings.get("resegmentRange") is not None:
        problems.append("resegmentRange")
    if settings.get("voxelBased"):
        problems.append("voxelBased")
    if problems:
        raise ValueError(f"{where}: settings not supported by the cropped extractor: {'; '.join(problems)}")


def band_box(box: tuple[slice, slice], band_px: float, shape: tuple[int, int]) -> tuple[slice, slice]:
    """`box` grown by ceil(band_px) on every side, clipped to `shape`."""
    pad = int(math.ceil(band_px))
    return tuple(slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(box, shape))


def object_band_crop(
    foreground: np.ndarray, label: int, band_px: float, box: tuple[slice, slice]
) -> tuple[tuple[slice, slice], np.ndarray]:
    """The background band of object `label`, computed on a crop.

    The band is every pixel within `band_px` (Euclidean distance between pixel
    centres, inclusive) of object `label`, excluding every foreground pixel: the
    definition of ``calcsig.masks.object_band``. Only the object's bounding box
    `box` grown by ``ceil(band_px)`` can hold such pixels, so the distance
    transform runs on that crop. Returns (crop slices, bool band over the crop).
    """
    crop = band_box(box, band_px, foreground.shape)
    sub = foreground[crop]
    distance = ndi.distance_transform_edt(sub != label)
    return crop, (distance <= band_px) & (sub == 0)
