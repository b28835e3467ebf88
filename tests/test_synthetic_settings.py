"""The corpus.synthetic config section, its schema and presets; the PNG writer."""

import io

import jsonschema
import numpy as np
import pytest
from PIL import Image

from calcsig.errors import ConfigError
from calcsig.synthetic import resolve_settings, with_defaults
from calcsig.synthetic.cohort import actionable_probability, draw_subject
from calcsig.synthetic.mammogram import render_view
from calcsig.synthetic.pngfile import encode_png16
from calcsig.synthetic.settings import section_schema


def _every_key(schema, path="corpus.synthetic"):
    for key, prop in schema.get("properties", {}).items():
        yield f"{path}.{key}", prop
        yield from _every_key(prop, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from _every_key(schema["items"], f"{path}[]")


def test_schema_documents_every_key_and_rejects_unknown_ones():
    schema = section_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for key, prop in _every_key(schema):
        assert "default" in prop and prop.get("description"), key
        if prop.get("type") == "object" and "properties" in prop:
            assert prop.get("additionalProperties") is False, key
    assert schema["additionalProperties"] is False
    with pytest.raises(ConfigError, match="corpus.synthetic"):
        with_defaults({"n_subject": 10})
    with pytest.raises(ConfigError, match="corpus.synthetic.bits"):
        with_defaults({"bits": 10})


def test_default_corpus_is_small_with_several_sites():
    s = resolve_settings({}, seed=1)
    assert s.shape == (1024, 832) and s.pixel_spacing_mm == 0.1 and s.bits == 14
    assert s.n_subjects >= 100 and len(s.sites) >= 2
    assert len({site.actionable_prevalence for site in s.sites}) == len(s.sites)
    assert len({(site.gain, site.offset) for site in s.sites}) == len(s.sites)
    assert s.enrichment_subjects == 0 and s.exact_duplicates == 0


def test_full_field_preset_renders_3328_by_2560_at_0_07_mm():
    s = resolve_settings({"preset": "full_field", "n_subjects": 1}, seed=2)
    assert s.shape == (3328, 2560) and s.pixel_spacing_mm == 0.07
    view = render_view(draw_subject(0, s, max_cluster_radius_mm=12.0), "CC", 1, s)
    assert view.pixels.shape == (3328, 2560) and view.labels.max() >= 3 and len(view.rois) >= 1


def test_density_falls_with_age_and_sites_differ_in_prevalence():
    s = resolve_settings({}, seed=3)
    subjects = [draw_subject(i, s, 12.0) for i in range(300)]
    ages = {
        d: np.mean([x.age for x in subjects if x.density == d]) for d in "ABCD" if any(x.density == d for x in subjects)
    }
    assert ages["A"] > ages["D"] and ages["B"] > ages["C"]
    site_a, site_b = s.sites[0], s.sites[1]
    assert actionable_probability(site_a, 57, "B") > actionable_probability(site_b, 57, "B")
    assert actionable_probability(site_a, 75, "B") > actionable_probability(site_a, 45, "B")


def test_png_round_trips_and_records_spacing_and_bits():
    pixels = np.random.default_rng(0).integers(0, 2**14, size=(37, 53), dtype=np.uint16)
    data = encode_png16(pixels, pixel_spacing_mm=0.1, significant_bits=14)
    assert data == encode_png16(pixels, pixel_spacing_mm=0.1, significant_bits=14)
    image = Image.open(io.BytesIO(data))
    assert np.array_equal(np.asarray(image), pixels)
    assert b"sBIT\x0e" in data and image.info["dpi"][0] == pytest.approx(254.0)
    with pytest.raises(ValueError, match="uint16"):
        encode_png16(pixels.astype(np.int32))
