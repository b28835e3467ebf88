# Cluster job sizes: every rule's memory and wall time, from its measured cost
# (workflow/resources.yaml, written by benchmarks/resources.py from the default run)
# scaled by the work of the job (calcsig.jobsize). Local runs ignore them except
# as limits that --resources sets. Per-item jobs are single-threaded (threads: 1):
# parallelism comes from running them side by side. The five rules that see the whole
# corpus's images in one job spread them over their threads in worker processes
# (calcsig.parallel; the outputs do not depend on how many), and the feature gathering
# reads its tables with threads. Ingest, the selector's training and the feature
# gathering, which nothing else can run beside, ask for WHOLE_CORPUS_THREADS, which
# Snakemake lowers to --cores on a workstation and to the profile's max-threads on a
# cluster; the partition and the two evaluations run beside per-item jobs, so they take
# one thread locally and a node's cores from the slurm profile's set-threads.

import yaml
from snakemake.exceptions import IncompleteCheckpointException

from calcsig.jobsize import RuleCost, image_work, memory_mb, runtime_minutes

_MEASURED = yaml.safe_load((REPO / "workflow" / "resources.yaml").read_text())
JOB_COSTS = {name: RuleCost.from_dict(values) for name, values in _MEASURED["rules"].items()}


def _working_spacing():
    return config["segment"]["working_spacing_mm"]


@functools.cache
def _image_work(version):
    return image_work(_corpus("images"), _working_spacing())


def corpus_work():
    """Megapixels of work in the whole corpus: measured from the corpus tables once they exist."""
    try:
        return float(_image_work(_corpus_version()).sum())
    except IncompleteCheckpointException:  # not run yet: this job is sized again once it has
        return estimated_corpus_work(0.0)


def estimated_corpus_work(source_mb):
    """Megapixels the corpus job will produce: for the synthetic source from its settings, for a
    real source from the size of its files at the measured megapixels per MB of image files."""
    measured = _MEASURED["corpus"]
    if config["corpus"]["source"] == "synthetic":
        synthetic = config["corpus"]["synthetic"]
        images = synthetic["n_subjects"] * measured["images_with_pixels"] / measured["subjects"]
        height = synthetic["image_height_mm"] / synthetic["pixel_spacing_mm"]
        width = synthetic["image_width_mm"] / synthetic["pixel_spacing_mm"]
        return images * height * width / 1e6
    return source_mb * measured["megapixels"] / measured["source_megabytes"]


def _item_work(rule_name, wildcards):
    """(total, largest) work megapixels of a per-item job's images (a ROI counts its image)."""
    work = _image_work(_corpus_version())
    if rule_name in ("masks", "features"):
        rois = _corpus("rois").set_index("roi_id")["image_id"]
        image_ids = rois.loc[list(roi_batches()[wildcards.batch])]
    elif rule_name == "insert_lesions":
        image_ids = _insertion_batches(_corpus_version())[wildcards.batch]
    else:
        image_ids = image_batches()[wildcards.batch]
    chosen = work.loc[list(image_ids)]
    return float(chosen.sum()), float(chosen.max())


PER_ITEM_RULES = ("segment", "insert_lesions", "masks", "features")
WHOLE_CORPUS_THREADS = 64
# rules whose threads share one process's memory (the others' threads are worker processes)
IN_PROCESS_THREADS = ("gather_features",)


def job_resources(rule_name):
    """`resources:` of a rule: mem_mb and runtime (minutes) for its jobs, grown on each retry.

    A job with several threads runs that many worker processes, each holding the
    data of one image (or one selector's training set) besides the job's own, so its
    memory is the single-threaded measurement times the threads (an upper bound),
    except where the threads share one process (`IN_PROCESS_THREADS`)."""
    cost = JOB_COSTS[rule_name]
    shared = rule_name in IN_PROCESS_THREADS

    def work(wildcards, input):
        if rule_name in PER_ITEM_RULES:
            return _item_work(rule_name, wildcards)
        if rule_name == "corpus":
            return estimated_corpus_work(input.size_mb), None
        return corpus_work(), None

    return {
        "mem_mb": lambda wildcards, input, threads, attempt: (1 if shared else threads)
        * memory_mb(cost, *work(wildcards, input), attempt=attempt),
        "runtime": lambda wildcards, input, attempt: runtime_minutes(cost, work(wildcards, input)[0], attempt),
    }
