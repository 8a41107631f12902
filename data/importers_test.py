"""Tests for the raw-dataset adapters; they read the real files in ../shared/data."""

from __future__ import annotations

import pytest

from data import contract
from data import importers
from tests import prerequisites


@pytest.fixture(scope="module")
def movielens() -> contract.Dataset:
  return importers.import_movielens_100k(
      prerequisites.shared_data_root("movielens-100k"))


@pytest.fixture(scope="module")
def grocery() -> contract.Dataset:
  return importers.import_amazon_grocery(
      prerequisites.shared_data_root("amazon-grocery"))


def test_registry_names():
  assert set(importers.IMPORTERS) == {"movielens-100k", "amazon-grocery",
                                      "amazon-video-games",
                                      "amazon-video-games-swapped",
                                      "amazon-books-movies",
                                      "amazon-books-movies-dense",
                                      "hm-fashion",
                                      "taobao-userbehavior-sample"}


def test_default_source_root_honours_env_var(monkeypatch, tmp_path):
  monkeypatch.setenv(importers.DATA_DIR_ENV_VAR, str(tmp_path))
  assert importers.default_source_root() == tmp_path

  monkeypatch.delenv(importers.DATA_DIR_ENV_VAR)
  assert importers.default_source_root().parts[-2:] == ("shared", "data")


def test_missing_raw_file_points_at_readme(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"ml-100k\.inter.*README\.md"):
    importers.import_movielens_100k(tmp_path)


def test_unknown_dataset_name(tmp_path):
  with pytest.raises(ValueError, match="unknown dataset 'netflix'"):
    importers.import_dataset("netflix", tmp_path, tmp_path / "out")


def test_movielens_counts_match_data_readme(movielens):
  interactions = movielens.interactions
  assert len(interactions) == 100_000
  assert interactions["user_id"].nunique() == 943
  assert interactions["item_id"].nunique() == 1_682
  assert len(movielens.items) == 1_682
  assert len(movielens.users) == 943


def test_movielens_labels_follow_min_positive_rating(movielens):
  first = movielens.interactions.iloc[0]  # u.data's first row: user 196, item 242, 3 stars.
  assert (first["user_id"], first["item_id"], first["timestamp"]) == ("196", "242", 881250949)
  assert (first["event"], first["label"]) == ("rating=3", 0.0)
  stars = movielens.interactions["event"].str.removeprefix("rating=").astype(int)
  assert ((stars >= 4) == (movielens.interactions["label"] == 1.0)).all()


def test_movielens_items_and_users(movielens):
  toy_story = movielens.items.set_index("item_id").loc["1"]
  assert toy_story["title"] == "Toy Story 1995"
  assert toy_story["category"] == "Animation|Children's|Comedy"
  assert list(movielens.users.columns) == ["user_id", "age", "gender", "occupation", "zip_code"]


def test_grocery_counts_match_data_readme(grocery):
  interactions = grocery.interactions
  assert len(interactions) == 121_892
  assert interactions["user_id"].nunique() == 14_681
  assert interactions["item_id"].nunique() == 8_687
  assert set(interactions["item_id"]) <= set(grocery.items["item_id"])
  assert set(interactions["label"]) == {1.0}
  assert set(interactions["event"]) == {"review"}
  assert grocery.users is None


def test_grocery_related_items_are_union_without_duplicates(grocery):
  first = grocery.items.set_index("item_id").loc["1"]
  related = first["related_items"].split("|")
  assert related[:3] == ["6285", "194", "6427"]
  assert len(related) == len(set(related))
  assert "2286" in related  # Only in r_substitute.
  assert first["category"] == "grocery_cat_0"


def test_grocery_keeps_complements_and_substitutes_apart(grocery):
  first = grocery.items.set_index("item_id").loc["1"]
  complements = first["complement_items"].split("|")
  substitutes = first["substitute_items"].split("|")
  assert complements[:3] == ["6285", "194", "6427"]
  assert "2286" in substitutes and "2286" not in complements
  assert set(first["related_items"].split("|")) == set(complements) | set(substitutes)


def test_join_unique_ids_handles_empty_lists():
  assert importers._join_unique_ids("[]", "[3, 1]") == "3|1"
  assert importers._join_unique_ids("", "nan") == ""
  assert importers._join_unique_ids("[1, 2]", "[2, 3]") == "1|2|3"


def test_import_dataset_writes_a_loadable_contract_dir(tmp_path):
  directory = importers.import_dataset(
      "amazon-grocery", prerequisites.shared_data_root("amazon-grocery"),
      tmp_path / "grocery")

  assert sorted(path.name for path in directory.iterdir()) == ["interactions.csv", "items.csv"]
  assert len(contract.load_dataset(directory).interactions) == 121_892



@pytest.fixture(scope="module")
def hm_fashion() -> contract.Dataset:
  return importers.import_hm_fashion(prerequisites.shared_data_root("hm-fashion"))


@pytest.fixture(scope="module")
def taobao() -> contract.Dataset:
  return importers.import_taobao_userbehavior(
      prerequisites.shared_data_root("taobao-userbehavior-sample"))


def test_hm_fashion_counts_match_data_readme(hm_fashion):
  interactions = hm_fashion.interactions
  assert len(interactions) == 31_662
  assert interactions["user_id"].nunique() == 1_364
  assert interactions["item_id"].nunique() == 17_033
  # The articles file covers 4,116 of the purchased articles.
  assert len(set(interactions["item_id"]) & set(hm_fashion.items["item_id"])) == 4_116
  assert len(hm_fashion.users) == 1_364


def test_hm_fashion_keeps_leading_zeros_and_dates(hm_fashion):
  first = hm_fashion.interactions.iloc[0]
  assert first["item_id"] == "0493995001"
  assert first["timestamp"] == 1_537_401_600  # 2018-09-20T00:00:00Z
  assert first["event"] == "purchase_channel_2"
  stockings = hm_fashion.items.set_index("item_id").loc["0111565001"]
  assert stockings["title"] == "20 den 1p Stockings"
  assert stockings["category"] == ("Ladieswear|Socks & Tights|Underwear Tights|"
                                   "Tights basic")
  assert list(hm_fashion.users.columns) == ["user_id", *importers.HM_USER_COLUMNS]


def test_taobao_drops_the_cut_row_and_the_early_events(taobao):
  interactions = taobao.interactions
  # 84,475 complete rows, less 35 before 2017-11-25 (Beijing time).
  assert len(interactions) == 84_440
  assert interactions["timestamp"].min() >= importers.TAOBAO_FIRST_SECOND
  assert interactions["user_id"].nunique() == 815
  assert set(interactions["event"]) == {"pv", "cart", "fav", "buy"}
  assert set(interactions["item_id"]) <= set(taobao.items["item_id"])
  assert taobao.items["category"].str.startswith("taobao_cat_").all()


def test_taobao_names_the_line_of_a_short_row(tmp_path):
  folder = tmp_path / "taobao-userbehavior-sample"
  folder.mkdir()
  (folder / "UserBehavior.csv").write_text(
      "1,2268318,2520377,pv,1511544070\n"
      "1,2333346,2520771\n"
      "1,2576651,149192,pv,1511572885\n")
  with pytest.raises(contract.DataValidationError) as raised:
    importers.import_taobao_userbehavior(tmp_path)
  assert (raised.value.row, raised.value.field) == (2, "behavior_type")
  assert raised.value.path.endswith("UserBehavior.csv")


def test_taobao_names_the_line_of_a_bad_timestamp(tmp_path):
  folder = tmp_path / "taobao-userbehavior-sample"
  folder.mkdir()
  (folder / "UserBehavior.csv").write_text(
      "1,2268318,2520377,pv,1511544070\n"
      "1,2333346,2520771,pv,soon\n")
  with pytest.raises(contract.DataValidationError) as raised:
    importers.import_taobao_userbehavior(tmp_path)
  assert (raised.value.row, raised.value.field) == (2, "timestamp")


def _write_books_movies(root, files: dict[str, str]) -> None:
  """Writes `files` (path under amazon-books-movies/ -> text) below `root`."""
  for name, text in files.items():
    path = root / "amazon-books-movies" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


KG_BOOKS = "Amazon-KG-5core-Books/Amazon-KG-5core-Books"
KG_MOVIES = "Amazon-KG-5core-Movies_and_TV/Amazon-KG-5core-Movies_and_TV"
KG_INTER_HEADER = "user_id:token\titem_id:token\trating:float\n"
KG_LINK_HEADER = "item_id:token\tentity_id:token\n"
DENSE_HEADER = "user_id\titem_id\trating\n"


def _write_small_kg(root) -> None:
  _write_books_movies(root, {
      KG_MOVIES + ".inter": KG_INTER_HEADER + "A1\tM2\t1\nA1\tM1\t1\nA2\tM1\t1\n",
      KG_MOVIES + ".link": KG_LINK_HEADER + ("M1\tres:Absence_of_Malice\n"
                                             "M2\tres:Where's_My_Cow%3F\n"),
      KG_BOOKS + ".inter": KG_INTER_HEADER + "A3\t0001\t1\nA1\t0001\t1\n",
      # B9 is in no log: it gets no item row.
      KG_BOOKS + ".link": KG_LINK_HEADER + ("0001\tres:The_Prophet_(book)\n"
                                            "B9\tres:Unreviewed\n"),
  })


def test_books_movies_types_prefixes_and_orders_each_domain(tmp_path):
  _write_small_kg(tmp_path)
  log = importers.IMPORTERS["amazon-books-movies"](tmp_path).interactions
  assert list(log["user_id"]) == ["A1", "A1", "A2", "A3", "A1"]
  assert list(log["item_id"]) == ["video:M2", "video:M1", "video:M1",
                                  "item:0001", "item:0001"]
  assert list(log["item_type"]) == ["video"] * 3 + ["item"] * 2
  assert list(log["timestamp"]) == [0, 1, 2, 0, 1]
  assert set(log["label"]) == {1.0} and set(log["event"]) == {"review"}


def test_books_movies_titles_come_from_the_links(tmp_path):
  _write_small_kg(tmp_path)
  items = importers.import_amazon_books_movies(tmp_path).items
  assert dict(zip(items["item_id"], items["title"])) == {
      "video:M1": "Absence of Malice",
      "video:M2": "Where's My Cow?",
      "item:0001": "The Prophet (book)",
  }


def test_dbpedia_title_spells_the_resource_name():
  assert importers._dbpedia_title("res:The_Prophet_(book)") == "The Prophet (book)"
  assert importers._dbpedia_title(
      "res:%22Weird_Al%22_Yankovic:_The_Ultimate_Video_Collection") == (
          '"Weird Al" Yankovic: The Ultimate Video Collection')


def test_books_movies_dense_keeps_the_first_row_of_each_pair(tmp_path):
  _write_books_movies(tmp_path, {
      "Amazon-Dense-Subset/Amazon-Movies-Dense.inter": DENSE_HEADER + (
          "A1\tM1\t5.0\n"
          "A1\tM1\t5.0\n"  # An exact repeat.
          "A2\tM1\t2.0\n"
          "A1\tM1\t3.0\n"  # The same pair with other stars.
          "A1\tM2\t4.0\n"),
      "Amazon-Dense-Subset/Amazon-Books-Dense.inter": DENSE_HEADER + (
          "A2\tM1\t1.0\nA2\tM1\t1.0\n"),
  })
  log = importers.IMPORTERS["amazon-books-movies-dense"](tmp_path).interactions
  assert list(log["user_id"]) == ["A1", "A2", "A1", "A2"]
  # M1 in both domains stays two items.
  assert list(log["item_id"]) == ["video:M1", "video:M1", "video:M2", "item:M1"]
  assert list(log["item_type"]) == ["video", "video", "video", "item"]
  # A kept row's timestamp is its position in its file.
  assert list(log["timestamp"]) == [0, 2, 4, 0]
  assert list(log["event"]) == ["rating=5", "rating=2", "rating=4", "rating=1"]
  assert set(log["label"]) == {1.0}


@pytest.mark.parametrize("name, missing", [
    ("amazon-books-movies", r"Amazon-KG-5core-Movies_and_TV\.inter"),
    ("amazon-books-movies-dense", r"Amazon-Movies-Dense\.inter"),
])
def test_books_movies_missing_file_points_at_readme(tmp_path, name, missing):
  with pytest.raises(FileNotFoundError, match=missing + ".*README\\.md"):
    importers.IMPORTERS[name](tmp_path)


def test_books_movies_missing_link_file_points_at_readme(tmp_path):
  _write_small_kg(tmp_path)
  (tmp_path / "amazon-books-movies" / (KG_BOOKS + ".link")).unlink()
  with pytest.raises(FileNotFoundError, match=r"Books\.link.*README\.md"):
    importers.import_amazon_books_movies(tmp_path)


def test_books_movies_dense_names_the_line_of_an_empty_user(tmp_path):
  _write_books_movies(tmp_path, {
      "Amazon-Dense-Subset/Amazon-Movies-Dense.inter": DENSE_HEADER + (
          "A1\tM1\t5.0\nA1\tM1\t5.0\n\tM2\t4.0\n"),
      "Amazon-Dense-Subset/Amazon-Books-Dense.inter": DENSE_HEADER + "A2\tB1\t1.0\n",
  })
  with pytest.raises(contract.DataValidationError) as raised:
    importers.import_amazon_books_movies_dense(tmp_path)
  assert (raised.value.row, raised.value.field) == (4, "user_id")
  assert raised.value.path.endswith("Amazon-Movies-Dense.inter")


@pytest.fixture(scope="module")
def books_movies() -> contract.Dataset:
  return importers.import_amazon_books_movies(
      prerequisites.shared_data_root("amazon-books-movies"))


@pytest.fixture(scope="module")
def books_movies_dense() -> contract.Dataset:
  return importers.import_amazon_books_movies_dense(
      prerequisites.shared_data_root("amazon-books-movies"))


def _domain_counts(log):
  """(rows, users, items) of each item type, and the users of both."""
  counts = {item_type: (len(rows), rows["user_id"].nunique(), rows["item_id"].nunique())
            for item_type, rows in log.groupby("item_type")}
  videos, items = (set(log.loc[log["item_type"] == kind, "user_id"])
                   for kind in ("video", "item"))
  return counts, len(videos & items)


def test_books_movies_counts_match_data_readme(books_movies):
  assert _domain_counts(books_movies.interactions) == (
      {"video": (67_066, 5_648, 4_779), "item": (115_572, 10_485, 8_318)}, 1_062)
  assert set(books_movies.items["item_id"]) == set(books_movies.interactions["item_id"])
  prophet = books_movies.items.set_index("item_id").loc["item:000100039X"]
  assert prophet["title"] == "The Prophet (book)"


def test_books_movies_dense_has_one_row_per_pair(books_movies_dense):
  log = books_movies_dense.interactions
  assert not log.duplicated(["user_id", "item_id"]).any()
  counts, in_both = _domain_counts(log)
  # The data README's users and items; its rows less the repeated pairs.
  assert counts == {"video": (68_023 - 5_939, 1_381, 1_338),
                    "item": (38_149 - 6_645, 1_426, 723)}
  assert in_both == 1_329
  assert set(log["event"]) == {f"rating={stars}" for stars in range(1, 6)}
