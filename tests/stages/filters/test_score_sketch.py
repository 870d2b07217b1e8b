"""The score sketch and the id hash that the percentile and pareto filters stand on."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st
from support.data import sample_table

from gristmill.stages.filters import score_sketch
from gristmill.stages.filters.id_hash import id_hashes, id_uniforms


def test_id_hash_depends_on_the_id_only_not_on_chunks_slices_or_types():
    ids = sample_table().column("id")
    whole = id_hashes(ids, 5)
    chunked = pa.chunked_array(
        [ids.combine_chunks().slice(0, 1000), ids.combine_chunks().slice(1000)]
    )
    assert np.array_equal(id_hashes(chunked, 5), whole)
    assert np.array_equal(id_hashes(ids.combine_chunks().slice(7, 50), 5), whole[7:57])
    assert np.array_equal(id_hashes(ids.cast(pa.large_string()), 5), whole)
    assert not np.array_equal(id_hashes(ids, 6), whole)
    assert len(set(whole.tolist())) == len(ids)


def test_id_uniforms_look_uniform_and_bad_ids_are_defined():
    uniforms = id_uniforms(sample_table().column("id"), 1)
    assert uniforms.min() >= 0 and uniforms.max() < 1
    counts = np.histogram(uniforms, bins=10, range=(0, 1))[0]
    expected = len(uniforms) / 10
    assert ((counts - expected) ** 2 / expected).sum() < 30  # chi-square, 9 d.o.f.
    odd = id_uniforms(pa.array([None, "", "x" * 1_000_000, "é"]), 1)
    assert odd.shape == (4,) and odd[0] == odd[1]


@given(st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=200))
def test_buckets_keep_the_order_of_the_values(values):
    array = np.array(sorted(values))
    keys = score_sketch.bucket_keys(array, 12)
    assert np.all(np.diff(keys.astype(object)) >= 0)
    for value, key in zip(array, keys, strict=True):
        low, high = score_sketch.bucket_bounds(int(key), 12)
        assert low <= value <= high or (value == 0 and low <= 0 <= high)


def test_merging_is_order_independent_and_the_cut_hits_the_fraction():
    lengths = pc.utf8_length(sample_table().column("text")).to_numpy().astype(float)
    parts = [score_sketch.sketch(part) for part in np.array_split(lengths, 7)]
    merged = score_sketch.merge(parts)
    assert merged == score_sketch.merge(reversed(parts))
    assert merged == score_sketch.merge([score_sketch.sketch(lengths)])
    for fraction in (0.05, 0.46, 0.91):
        cut = score_sketch.find_cut(merged, fraction, keep_high=True)
        assert cut.expected_kept == round(fraction * len(lengths))
        keys = score_sketch.bucket_keys(lengths, 12)
        beyond = int((keys > cut.boundary).sum())
        at = int((keys == cut.boundary).sum())
        assert beyond + cut.boundary_keep * at == cut.expected_kept
