"""Snakemake adapter: local and global features of a batch of ROIs."""

from pathlib import Path

from calcsig.batch import code_digest, read_manifests, recipe, run_batch
from calcsig.features.stage import extract_roi_features
from calcsig.logs import log_to

out_dir = Path(snakemake.output[0]).parent.parent
masks = read_manifests([snakemake.input.masks]).set_index("roi_id")
params = {
    "families": snakemake.params.families,
    "radiomics_foreground": snakemake.input.foreground_settings,
    "radiomics_background": snakemake.input.background_settings,
}
settings_digest = code_digest([snakemake.input.foreground_settings, snakemake.input.background_settings])
code = code_digest(snakemake.input.code)


def files(roi):
    return {"objects": out_dir / f"{roi['roi_id']}.objects.parquet", "roi": out_dir / f"{roi['roi_id']}.roi.parquet"}


def recipe_of(roi):
    return recipe(
        "features", snakemake.params.families, settings_digest, code, roi, masks.at[roi["roi_id"], "npz_sha256"]
    )


def features(roi):
    if not masks.at[roi["roi_id"], "npz"]:
        return {"n_objects": 0, "qc_status": masks.at[roi["roi_id"], "qc_status"]}  # no masks: failed the gate
    paths = files(roi)
    found, _ = extract_roi_features(
        masks.at[roi["roi_id"], "npz"], roi["image_path"], params, paths["objects"], paths["roi"], roi_id=roi["roi_id"]
    )
    return {"n_objects": len(found), "qc_status": "ok"}


with log_to(snakemake.log[0]):
    run_batch(
        snakemake.params.rois, features, snakemake.output[0], id_column="roi_id", files=files, recipe_of=recipe_of
    )
