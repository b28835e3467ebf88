"""Snakemake adapter: foreground, background bands and object distances of a batch of ROIs."""

from pathlib import Path

from calcsig.batch import read_manifests, run_batch
from calcsig.logs import log_to
from calcsig.masks import roi_masks_file

out_dir = Path(snakemake.output[0]).parent.parent
segmented = read_manifests(snakemake.input.segments).set_index("image_id")


def masks(roi):
    seg = segmented.loc[roi["image_id"]]
    out = out_dir / f"{roi['roi_id']}.npz"
    arrays = roi_masks_file(
        seg["npz"],
        roi,
        snakemake.params.masks,
        out,
        segment_tsv=seg["tsv"],
        selector_threshold=snakemake.params.selector_threshold,
    )
    return {
        "roi_id": roi["roi_id"],
        "image_id": roi["image_id"],
        "npz": str(out),
        "n_objects": len(arrays["object_ids"]),
        "n_dropped_small": int(arrays["n_dropped_small"]),
        "n_rejected_selector": int(arrays["n_rejected_selector"]),
    }


with log_to(snakemake.log[0]):
    run_batch(snakemake.params.rois, masks, snakemake.output[0])
