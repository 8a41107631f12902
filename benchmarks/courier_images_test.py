"""Tests for the COURIER image benchmark's data, budget and run."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
from PIL import Image
import pytest

from benchmarks import courier_images
from benchmarks import seminar_long
from data import features
from data import importers
from data import item_vectors
from models.seminar import ctr_ranker

ARTICLES = [f"01000000{n:02d}" for n in range(1, 11)]


def _write_hm_folder(root) -> None:
  """A tiny `hm-fashion/`: 4 customers buying over 5 days, 10 articles with
  photos, metadata for the first 6."""
  folder = root / "hm-fashion"
  folder.mkdir()
  rng = np.random.default_rng(0)
  rows = [(f"2020-09-{day + 10:02d}", f"c{customer}",
           ARTICLES[(day * 3 + customer * 2 + extra) % 10], "0.01", "2")
          for day in range(5) for customer in range(4) for extra in range(2)]
  pd.DataFrame(rows, columns=["t_dat", "customer_id", "article_id", "price",
                              "sales_channel_id"]).to_csv(
      folder / "transactions_train_sample.csv", index=False)
  articles = pd.DataFrame({"article_id": ARTICLES[:6],
                           "prod_name": ["red top", "blue top", "red dress",
                                         "black jeans", "blue jeans", "cap"]})
  for column in importers.HM_CATEGORY_COLUMNS:
    articles[column] = "x"
  articles["product_type_name"] = ["Top", "Top", "Dress", "Trousers",
                                   "Trousers", "Cap"]
  articles.to_csv(folder / "articles_train_sample.csv", index=False)
  pd.DataFrame({"customer_id": [f"c{n}" for n in range(4)], "age": "30",
                "club_member_status": "ACTIVE",
                "fashion_news_frequency": "NONE"}).to_csv(
      folder / "customers_sample.csv", index=False)
  with zipfile.ZipFile(folder / "images_64x96.zip", "w") as photos:
    for article in ARTICLES:
      pixels = rng.integers(0, 256, (12, 8, 3), dtype=np.uint8)
      data = io.BytesIO()
      Image.fromarray(pixels).save(data, format="JPEG")
      photos.writestr(f"{article}.jpg", data.getvalue())


def test_pretrain_positives_keep_each_customers_latest_train_positives():
  train = {"user": np.array([0, 0, 0, 0, 1, 1, 1]),
           ctr_ranker.LABEL: np.array([1, 0, 1, 1, 1, 0, 1]),
           ctr_ranker.CANDIDATE: np.array([5, 9, 6, 7, 8, 9, 3]),
           ctr_ranker.HISTORY: np.arange(7)[:, np.newaxis]}
  positives = courier_images.pretrain_positives(train, per_user=2)
  np.testing.assert_array_equal(positives[features.ITEM_INDEX], [6, 7, 8, 3])
  np.testing.assert_array_equal(
      positives[features.HISTORY_ITEM_INDICES][:, 0], [2, 3, 4, 6])


def test_ranker_inputs_shift_users_past_padding():
  examples = {"user": np.array([0, 2]), ctr_ranker.CANDIDATE: np.array([4, 5]),
              ctr_ranker.HISTORY: np.array([[1, 0], [2, 3]]),
              ctr_ranker.LABEL: np.array([1.0, 0.0])}
  inputs = courier_images.ranker_inputs(examples)
  np.testing.assert_array_equal(inputs[features.USER_INDEX], [1, 3])
  np.testing.assert_array_equal(inputs[features.LABEL], [1, 0])


def test_content_and_product_types_exist_only_for_described_items():
  items = pd.DataFrame({"item_id": ["a", "b"], "title": ["red top", "cap"],
                        "category": ["Ladies|Upper|T-shirt|Jersey",
                                     "Men|Acc|Cap|Hats"],
                        "related_items": ""})
  content = courier_images.item_content(items, ["", "a", "z", "b"])
  assert content.shape[0] == 4
  np.testing.assert_array_equal(content[[0, 2]], 0.0)
  np.testing.assert_allclose(np.linalg.norm(content[[1, 3]], axis=1), 1.0,
                             rtol=1e-5)
  classes, names = courier_images.product_types(items, ["", "a", "z", "b"])
  assert names == ["Cap", "T-shirt"]
  np.testing.assert_array_equal(classes, [-1, 1, -1, 0])


def test_cycled_repeats_every_row_before_any_twice():
  rows = courier_images.cycled({"x": np.arange(4)}, 10, seed=0)["x"]
  assert len(rows) == 10
  assert sorted(rows[:4]) == [0, 1, 2, 3] and sorted(rows[4:8]) == [0, 1, 2, 3]
  assert courier_images.steps_per_epoch(300, 1_000, 256) == 4


def _per_seed(courier, generic, no_image):
  return {"courier": [{"auc": v} for v in courier],
          "simclr": [{"auc": v} for v in generic],
          "supervised": [{"auc": 0.5} for _ in courier],
          "random_encoder": [{"auc": 0.5} for _ in courier],
          "no_image": [{"auc": v} for v in no_image]}


def test_goal_needs_the_margin_over_the_best_generic_row_in_every_seed():
  met = courier_images.goal({"per_seed": _per_seed(
      [0.70, 0.71], [0.696, 0.706], [0.60, 0.60])})
  assert met["met"]
  np.testing.assert_allclose(met["auc_margin_over_best_generic"],
                             [0.004, 0.004])
  one_seed_short = courier_images.goal({"per_seed": _per_seed(
      [0.70, 0.71], [0.696, 0.708], [0.60, 0.60])})
  assert not one_seed_short["met"]
  below_no_image = courier_images.goal({"per_seed": _per_seed(
      [0.70, 0.71], [0.60, 0.60], [0.71, 0.60])})
  assert not below_no_image["met"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """The benchmark on a tiny H&M folder, every row, tables saved."""
  root = tmp_path_factory.mktemp("hm")
  _write_hm_folder(root)
  output = root / "result.json"
  courier_images.main([
      "--source_root", str(root), "--seeds", "0", "--negatives", "1",
      "--test_days", "1", "--valid_days", "1", "--history_length", "3",
      "--pretrain_epochs", "2", "--pretrain_epoch_candidates", "1",
      "--epochs", "1", "--pretrain_batch_size", "4",
      "--image_height", "12", "--image_width", "8", "--image_filters", "4",
      "--image_embedding_dim", "4", "--embedding_dim", "4",
      "--encoder_hidden", "8", "--save_tables", str(root / "tables"),
      "--output", str(output)])
  return root, json.loads(output.read_text())


def test_benchmark_runs_every_row_on_a_tiny_hm_folder(tiny_run):
  _, written = tiny_run
  result = written["results"]["hm-fashion"]
  assert set(result["variants"]) == set(courier_images.VARIANTS)
  assert result["num_articles"] == 10
  assert result["articles_with_product_type"] == 6
  for variant in courier_images.VARIANTS:
    assert 0.0 <= result["variants"][variant]["auc"]["mean"] <= 1.0
  assert "COURIER minus the best generic row" in courier_images.markdown(
      result)


def test_each_pretrained_row_keeps_its_best_validation_epoch(tiny_run):
  _, written = tiny_run
  per_seed = written["results"]["hm-fashion"]["per_seed"]
  for variant in courier_images.PRETRAINED:
    run, = per_seed[variant]
    candidates = {candidate["pretrain_epoch"]: candidate
                  for candidate in run["pretrain_candidates"]}
    assert sorted(candidates) == [1, 2]
    assert run["pretrain_epoch"] == courier_images.best_pretrain_epoch(
        {epoch: c["valid_auc"] for epoch, c in candidates.items()})
    assert run["auc"] == candidates[run["pretrain_epoch"]]["auc"]
  assert "pretrain_epoch" not in per_seed["random_encoder"][0]


def test_best_pretrain_epoch_is_the_best_validation_auc_earliest_on_ties():
  assert courier_images.best_pretrain_epoch({2: 0.60, 4: 0.62, 6: 0.61}) == 4
  assert courier_images.best_pretrain_epoch({2: 0.62, 4: 0.62, 6: 0.61}) == 2
  assert courier_images.best_pretrain_epoch({None: 0.5}) is None


def test_pretrain_epoch_candidates_must_be_within_the_pretraining():
  with pytest.raises(SystemExit):
    courier_images.parse_args(["--pretrain_epochs", "4",
                               "--pretrain_epoch_candidates", "2", "6"])


def test_saved_tables_are_item_vector_files_of_every_article(tiny_run):
  root, _ = tiny_run
  tables = sorted(path.name for path in (root / "tables").iterdir())
  assert tables == sorted(f"{variant}_seed0.npz" for variant in
                          courier_images.VARIANTS if variant != "no_image")
  table, found = item_vectors.load_item_vectors(
      root / "tables" / "simclr_seed0.npz", [""] + ARTICLES)
  assert found[1:].all() and not found[0]
  assert table.shape == (11, 4) and np.abs(table[1:]).sum() > 0


def test_seminar_and_its_baselines_read_the_photos_on_a_tiny_hm_folder(
    tiny_run, tmp_path):
  root, _ = tiny_run
  output = tmp_path / "seminar_long.json"
  seminar_long.main([
      "--dataset", "hm-fashion", "--source-root", str(root),
      "--image-vectors", str(root / "tables" / "simclr_seed0.npz"),
      "--models", "din", "sim", "sasrec", "seminar", "--seeds", "0",
      "--test-days", "1", "--valid-days", "1", "--train-days", "0",
      "--history-length", "4", "--embedding-dim", "4", "--top-k", "2",
      "--sasrec-length", "3", "--window-length", "3", "--max-epochs", "1",
      "--psu-epochs", "1", "--psu-batch-size", "4", "--pq-subspaces", "2",
      "--pq-rerank-factors", "--output", str(output)])
  written = json.loads(output.read_text())
  assert written["dataset"] == "hm-fashion"
  assert set(written["runs"]) == {"din", "sim", "sasrec", "seminar"}
  assert all(0.0 <= runs[0]["auc"] <= 1.0
             for runs in written["runs"].values())


def _result_file(path, seeds, rows, examples=None):
  per_seed = {variant: [{"auc": auc, "pretrain_losses": []} for auc in aucs]
              for variant, aucs in rows.items()}
  path.write_text(json.dumps({
      "command": "python -m benchmarks.courier_images", "wall_s": 1.0,
      "args": {"seeds": seeds},
      "results": {"hm-fashion": {
          "examples": examples or {"test": 10}, "per_seed": per_seed,
          "learning_curves": {variant: [{} for _ in aucs]
                              for variant, aucs in rows.items()}}}}))
  return str(path)


def test_merge_takes_the_named_rows_and_orders_seeds(tmp_path):
  main = _result_file(tmp_path / "main.json", [0, 1],
                      {"no_image": [0.50, 0.51], "courier": [0.60, 0.61]})
  seed_one = _result_file(tmp_path / "one.json", [1], {"courier": [0.71]})
  seed_zero = _result_file(tmp_path / "zero.json", [0], {"courier": [0.70]})
  merged = courier_images.merge(
      [f"{main}:no_image", seed_one, f"{seed_zero}:courier"])
  assert [run["auc"] for run in merged["per_seed"]["courier"]] == [0.70, 0.71]
  assert [run["seed"] for run in merged["per_seed"]["no_image"]] == [0, 1]
  assert merged["variants"]["courier"]["auc"]["mean"] == pytest.approx(0.705)
  assert [part["rows"] for part in merged["sources"]] == [
      ["no_image"], ["courier"], ["courier"]]


def test_merge_refuses_other_examples_and_a_seed_twice(tmp_path):
  main = _result_file(tmp_path / "main.json", [0], {"courier": [0.6]})
  other = _result_file(tmp_path / "other.json", [0], {"courier": [0.6]},
                       examples={"test": 11})
  with pytest.raises(ValueError, match="other examples"):
    courier_images.merge([main, other])
  with pytest.raises(ValueError, match="seed twice"):
    courier_images.merge([main, main])
  seed_one = _result_file(tmp_path / "one.json", [1], {"courier": [0.7]})
  no_image = _result_file(tmp_path / "no_image.json", [0], {"no_image": [0.5]})
  with pytest.raises(ValueError, match="has seeds"):
    courier_images.merge([main, seed_one, no_image])
