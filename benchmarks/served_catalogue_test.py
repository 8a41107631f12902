"""Tests for served_catalogue: the pushed version, database growth, index."""

import numpy as np
import pytest

from benchmarks import served_catalogue

_REAL_IDS = ["a", "b"]
_REAL = np.array([[3.0, 4.0], [0.0, 2.0]], np.float32)


def test_grown_database_keeps_real_rows_first_and_names_the_rest():
  ids, vectors = served_catalogue.grow_database(_REAL_IDS, _REAL, 5, 0.1, 0)

  assert ids == ["a", "b", "synthetic-0", "synthetic-1", "synthetic-2"]
  assert vectors.dtype == np.float32 and vectors.shape == (5, 2)
  np.testing.assert_array_equal(vectors[:2], _REAL)


def test_synthetic_items_without_noise_copy_real_vectors():
  _, vectors = served_catalogue.grow_database(_REAL_IDS, _REAL, 50, 0.0, 0)

  for row in vectors[2:]:
    assert min(np.abs(row - real).max() for real in _REAL) < 1e-6


def test_synthetic_items_keep_the_real_norms():
  _, vectors = served_catalogue.grow_database(_REAL_IDS, _REAL, 50, 0.5, 0)

  norms = np.linalg.norm(vectors[2:], axis=1)
  assert np.all(np.isclose(norms, 5.0) | np.isclose(norms, 2.0))


def test_noise_scale_is_the_noise_norm_relative_to_the_vector():
  rng = np.random.default_rng(1)
  real = rng.standard_normal((20, 64)).astype(np.float32)
  real_ids = [str(n) for n in range(20)]
  _, vectors = served_catalogue.grow_database(real_ids, real, 4020, 0.1, 0)

  unit = vectors[20:] / np.linalg.norm(vectors[20:], axis=1, keepdims=True)
  real_unit = real / np.linalg.norm(real, axis=1, keepdims=True)
  # Distance to the real direction each synthetic item was drawn around: the
  # noise component orthogonal to it, about 0.1 * sqrt(63 / 64).
  distance = np.min(np.linalg.norm(unit[:, None] - real_unit[None], axis=2),
                    axis=1)
  assert np.mean(distance) == pytest.approx(0.1, rel=0.05)


def test_growth_is_seeded():
  first = served_catalogue.grow_database(_REAL_IDS, _REAL, 9, 0.1, 3)[1]
  again = served_catalogue.grow_database(_REAL_IDS, _REAL, 9, 0.1, 3)[1]
  other = served_catalogue.grow_database(_REAL_IDS, _REAL, 9, 0.1, 4)[1]

  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)


def test_growth_refuses_to_shrink_or_to_clash_with_real_ids():
  with pytest.raises(ValueError, match="cannot grow 2 items to 1"):
    served_catalogue.grow_database(_REAL_IDS, _REAL, 1, 0.1, 0)
  with pytest.raises(ValueError, match="starts with"):
    served_catalogue.grow_database(["a", "synthetic-7"], _REAL, 3, 0.1, 0)


def _touch_version(directory) -> None:
  directory.mkdir(parents=True)
  (directory / "saved_model.pb").write_bytes(b"")


def test_model_dir_names_a_version_a_model_or_a_serving_base(tmp_path):
  serving = tmp_path / "serving"
  for version in ("9", "10"):
    _touch_version(serving / "retrieval" / version)

  newest = str(serving / "retrieval" / "10")
  assert served_catalogue.pushed_version_dir(
      str(serving / "retrieval" / "9")) == str(serving / "retrieval" / "9")
  assert served_catalogue.pushed_version_dir(str(serving / "retrieval")) == newest
  assert served_catalogue.pushed_version_dir(str(serving)) == newest
  with pytest.raises(ValueError, match="neither"):
    served_catalogue.pushed_version_dir(str(tmp_path))


def test_index_disk_bytes_sum_the_index_files(tmp_path):
  searcher = tmp_path / "assets.extra" / "scann_index" / "searcher"
  searcher.mkdir(parents=True)
  (searcher / "dataset.npy").write_bytes(b"x" * 300)
  (searcher.parent / "item_ids.txt").write_bytes(b"a\nb\n")
  (tmp_path / "saved_model.pb").write_bytes(b"y" * 1000)

  assert served_catalogue.index_disk_bytes(str(tmp_path)) == 304
