"""Snakemake adapter: local and global features of a batch of ROIs."""

from pathlib import Path

from calcsig.batch import read_manifests, run_batch
from calcsig.features.stage import extract_roi_features
from calcsig.logs import log_to

out_dir = Path(snakemake.output[0]).parent.parent
masks = read_manifests([snakemake.input.masks]).set_index("roi_id")
params = {
    **snakemake.params.features,
    "radiomics_foreground": snakemake.input.foreground_settings,
    "radiomics_background": snakemake.input.background_settings,
}


def features(roi):
    objects, roi_table = out_dir / f"{roi['roi_id']}.objects.parquet", out_dir / f"{roi['roi_id']}.roi.parquet"
    found, _ = extract_roi_features(
        masks.at[roi["roi_id"], "npz"], roi["image_path"], params, objects, roi_table, roi_id=roi["roi_id"]
    )
    return {"roi_id": roi["roi_id"], "objects": str(objects), "roi": str(roi_table), "n_objects": len(found)}


with log_to(snakemake.log[0]):
    run_batch(snakemake.params.rois, features, snakemake.output[0])
