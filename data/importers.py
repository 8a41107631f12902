"""Adapters from the public raw datasets in ../shared/data to the data contract.

Each adapter is one function `source_root -> Dataset`, registered in
`IMPORTERS`. Adapters only reshape raw columns; validation is done by the
`contract.normalize_*` functions, so imported data obeys exactly the same rules
as user files. Nothing is downloaded: the raw files must already be present
(see ../shared/data/README.md for their origin and terms). The raw folder and
the output directory are local paths or URIs (`s3://...`, see `data.storage`).
"""

from __future__ import annotations

import csv
import functools
import os
import pathlib
import re
import urllib.parse
from typing import Callable

import pandas as pd

from data import contract
from data import contract_rules
from data import storage

DATA_DIR_ENV_VAR = "VREC_DATA_DIR"
# A source checkout sits beside shared/; an installed package does not, so
# it falls back to the working directory's ../shared/data.
_SOURCE_CHECKOUT = pathlib.Path(__file__).resolve().parents[1]
_ID_LIST_TOKEN = re.compile(r"[^\[\],\s'\"]+")
# Spellings an empty id list takes in item_meta.csv, depending on how it was saved.
_EMPTY_ID_LISTS = frozenset({"", "[]", "nan", "None"})


def default_source_root() -> pathlib.Path:
  """Where the raw datasets live.

  $VREC_DATA_DIR if set; else `<checkout>/../shared/data` when running from
  a source checkout that has it; else `../shared/data` from the working
  directory (an installed wheel run from a checkout's root).
  """
  override = os.environ.get(DATA_DIR_ENV_VAR)
  if override:
    return pathlib.Path(override)
  beside_checkout = _SOURCE_CHECKOUT.parent / "shared" / "data"
  if beside_checkout.is_dir():
    return beside_checkout
  return pathlib.Path.cwd().parent / "shared" / "data"


def import_movielens_100k(
  source_root: contract.PathLike, min_positive_rating: float = 4.0
) -> contract.Dataset:
  """Imports MovieLens 100K (RecBole's atomic files) as explicit feedback.

  Every rating becomes an interaction with `event="rating=<r>"`; ratings of at
  least `min_positive_rating` are positives (label 1.0), the rest negatives.

  Args:
    source_root: The folder holding `movielens-100k/`.
    min_positive_rating: Smallest rating (1-5) that counts as a positive.

  Returns:
    The dataset with items (title + year, genres as categories) and users.
  """
  folder = storage.join(source_root, "movielens-100k")
  ratings = read_raw_tsv(storage.join(folder, "ml-100k.inter"), source_root)
  stars = pd.to_numeric(ratings["rating"])
  interactions = pd.DataFrame({
    "user_id": ratings["user_id"],
    "item_id": ratings["item_id"],
    "timestamp": ratings["timestamp"],
    "label": (stars >= min_positive_rating).astype(float),
    "event": "rating=" + ratings["rating"],
  })
  movies = read_raw_tsv(storage.join(folder, "ml-100k.item"), source_root)
  items = pd.DataFrame({
    "item_id": movies["item_id"],
    "title": (movies["movie_title"] + " " + movies["release_year"]).str.strip(),
    # Genres are space-separated single tokens ("Children's" included).
    "category": movies["class"].str.split().str.join(contract.LIST_SEPARATOR),
  })
  users = read_raw_tsv(storage.join(folder, "ml-100k.user"), source_root)
  return contract.Dataset(
    interactions=contract.normalize_interactions(interactions, "movielens-100k interactions"),
    items=contract.normalize_items(items, "movielens-100k items"),
    users=contract.normalize_users(users, "movielens-100k users"),
  )


def import_amazon_grocery(source_root: contract.PathLike) -> contract.Dataset:
  """Imports ReChorus' Amazon Grocery (training part) as implicit feedback.

  Args:
    source_root: The folder holding `amazon-grocery/`.

  Returns:
    The dataset with items (category and also-bought/also-viewed items); the
    source has no user attributes, so `users` is None.
  """
  folder = storage.join(source_root, "amazon-grocery")
  reviews = read_raw_tsv(storage.join(folder, "train.csv"), source_root)
  interactions = pd.DataFrame({
    "user_id": reviews["user_id"],
    "item_id": reviews["item_id"],
    "timestamp": reviews["time"],
    "label": 1.0,
    "event": "review",
  })
  meta = read_raw_tsv(storage.join(folder, "item_meta.csv"), source_root)
  related = [
    _join_unique_ids(complements, substitutes)
    for complements, substitutes in zip(meta["r_complement"], meta["r_substitute"])
  ]
  items = pd.DataFrame({
    "item_id": meta["item_id"],
    "category": "grocery_cat_" + meta["i_category"],
    "related_items": related,
    "complement_items": [_join_unique_ids(ids) for ids in meta["r_complement"]],
    "substitute_items": [_join_unique_ids(ids) for ids in meta["r_substitute"]],
  })
  return contract.Dataset(
    interactions=contract.normalize_interactions(interactions, "amazon-grocery interactions"),
    items=contract.normalize_items(items, "amazon-grocery items"),
  )


# CDRIB's two Amazon domains; upstream's names do not say which is the video one.
VIDEO_GAMES_DOMAINS = ("game_video", "video_game")


def import_amazon_video_games(
  source_root: contract.PathLike, video_domain: str = "game_video"
) -> contract.Dataset:
  """Imports CDRIB's two Amazon domains as one user-video / user-item log (GMN).

  One domain becomes `item_type="video"`, the other `"item"`; users are shared
  across domains. Item ids are per domain, so they are prefixed with the item
  type ("video:5", "item:5") to stay distinct in one item vocabulary. The
  data has no timestamps: an interaction's timestamp is its row position in
  its domain file, so each user's rows keep file order.

  Args:
    source_root: The folder holding `amazon-video-games/`.
    video_domain: The folder ("game_video" or "video_game") used as videos.

  Returns:
    The dataset (implicit feedback only; no item or user attributes).
  """
  if video_domain not in VIDEO_GAMES_DOMAINS:
    raise ValueError(f"video_domain must be one of {VIDEO_GAMES_DOMAINS}, got {video_domain!r}")
  folder = storage.join(source_root, "amazon-video-games")
  parts = []
  for domain in VIDEO_GAMES_DOMAINS:
    item_type = "video" if domain == video_domain else "item"
    path = storage.join(folder, domain, "new_reindex.txt")
    _require_raw_file(path, source_root)
    with storage.open_file(path) as stream:
      rows = pd.read_csv(stream, sep="\t", header=None,
                         names=["user_id", "item_id", "label"], dtype=str)
    parts.append(_domain_interactions(path, rows, item_type, "review", first_line=1))
  return contract.Dataset(interactions=pd.concat(parts, ignore_index=True))


# Amazon-KG's two domains under `amazon-books-movies/`, by item type: each
# path lacks only its `.inter` / `.link` suffix.
BOOKS_MOVIES_KG_FILES = {
  "video": "Amazon-KG-5core-Movies_and_TV/Amazon-KG-5core-Movies_and_TV",
  "item": "Amazon-KG-5core-Books/Amazon-KG-5core-Books",
}
# The dense subset's two domains under `amazon-books-movies/`, by item type.
BOOKS_MOVIES_DENSE_FILES = {
  "video": "Amazon-Dense-Subset/Amazon-Movies-Dense.inter",
  "item": "Amazon-Dense-Subset/Amazon-Books-Dense.inter",
}


def import_amazon_books_movies(source_root: contract.PathLike) -> contract.Dataset:
  """Imports Amazon-KG's 5-core Books and Movies & TV as one user-video / user-item log.

  Movies & TV become `item_type="video"`, Books `"item"`, with ids and
  timestamps as in `import_amazon_video_games`: item ids prefixed with the
  item type, and no timestamps in the data, so a row's position in its
  domain file stands in for time. Reviewer ids are shared across domains.
  Every rating is 1, so every row is a positive `event="review"`.

  Args:
    source_root: The folder holding `amazon-books-movies/`.

  Returns:
    The dataset with items (title from the item's DBpedia resource, e.g.
    `res:The_Prophet_(book)` -> "The Prophet (book)") for the items of the
    log; no user attributes.
  """
  folder = storage.join(source_root, "amazon-books-movies")
  parts, titles = [], []
  for item_type, stem in BOOKS_MOVIES_KG_FILES.items():
    path = storage.join(folder, stem + ".inter")
    rows = read_raw_tsv(path, source_root)
    parts.append(_domain_interactions(path, rows, item_type, "review", first_line=2))
    links = read_raw_tsv(storage.join(folder, stem + ".link"), source_root)
    # The links also name a few hundred items the 5-core log no longer has.
    links = links[links["item_id"].isin(rows["item_id"])]
    titles.append(pd.DataFrame({
      "item_id": item_type + ":" + links["item_id"],
      "title": links["entity_id"].map(_dbpedia_title),
    }))
  return contract.Dataset(
    interactions=pd.concat(parts, ignore_index=True),
    items=contract.normalize_items(pd.concat(titles, ignore_index=True),
                                   "amazon-books-movies items"),
  )


def import_amazon_books_movies_dense(source_root: contract.PathLike) -> contract.Dataset:
  """Imports the dense Books / Movies subset as one user-video / user-item log.

  Same domains, ids and timestamps as `import_amazon_books_movies`. The files
  repeat many rows, some with different stars for the same (user, item):
  each domain keeps only the first row of each (user, item), so how many rows
  go depends on the files. Every kept row is a positive (label 1.0): a rating
  is an interaction, with its stars in `event="rating=<1-5>"`. The files run
  roughly item by item, so file order says nothing about time: hold out at
  random, not by time.

  Args:
    source_root: The folder holding `amazon-books-movies/`.

  Returns:
    The dataset (no item or user attributes).
  """
  folder = storage.join(source_root, "amazon-books-movies")
  parts = []
  for item_type, name in BOOKS_MOVIES_DENSE_FILES.items():
    path = storage.join(folder, name)
    rows = read_raw_tsv(path, source_root).drop_duplicates(["user_id", "item_id"])
    # Stars are written "5.0"; "rating=5" matches the MovieLens importer's events.
    stars = rows["rating"].str.removesuffix(".0")
    parts.append(_domain_interactions(path, rows, item_type, "rating=" + stars,
                                      first_line=2))
  return contract.Dataset(interactions=pd.concat(parts, ignore_index=True))


# H&M's article fields that become an item's categories, broadest first.
HM_CATEGORY_COLUMNS = ("index_group_name", "product_group_name",
                       "product_type_name", "department_name")
# H&M customer attributes kept as user features; `postal_code` is a hash of
# one customer's code (no shared signal), and `FN`/`Active` are mostly empty.
HM_USER_COLUMNS = ("age", "club_member_status", "fashion_news_frequency")


def import_hm_fashion(source_root: contract.PathLike) -> contract.Dataset:
  """Imports the H&M purchase sample as implicit feedback, one row a purchase.

  Purchases carry a date and no time of day, so a day's purchases share a
  timestamp and keep the file's order among themselves. H&M writes one row
  per unit bought: a repeat of the same article on the same day is one
  interaction once the pipeline drops exact (item, time) repeats. Only 4,116
  of the 17,033 purchased articles have a row in the articles file (it comes
  from a later sample, ../shared/data/README.md); the others have no title
  or category.

  Args:
    source_root: The folder holding `hm-fashion/`.

  Returns:
    The dataset with items (name; index group, product group and type,
    department as categories) and users (age, club status, news frequency).
  """
  folder = storage.join(source_root, "hm-fashion")
  purchases = read_raw_csv(
      storage.join(folder, "transactions_train_sample.csv"), source_root)
  interactions = pd.DataFrame({
    "user_id": purchases["customer_id"],
    "item_id": purchases["article_id"],
    "timestamp": purchases["t_dat"],
    "label": 1.0,
    "event": "purchase_channel_" + purchases["sales_channel_id"],
  })
  articles = read_raw_csv(storage.join(folder, "articles_train_sample.csv"),
                          source_root)
  items = pd.DataFrame({
    "item_id": articles["article_id"],
    "title": articles["prod_name"],
    "category": articles[list(HM_CATEGORY_COLUMNS)].agg(
        contract.LIST_SEPARATOR.join, axis=1),
  })
  customers = read_raw_csv(storage.join(folder, "customers_sample.csv"),
                           source_root)
  return contract.Dataset(
    interactions=contract.normalize_interactions(interactions, "hm-fashion interactions"),
    items=contract.normalize_items(items, "hm-fashion items"),
    users=contract.normalize_users(
        customers[["customer_id", *HM_USER_COLUMNS]].rename(
            columns={"customer_id": "user_id"}), "hm-fashion users"),
  )


TAOBAO_COLUMNS = ("user_id", "item_id", "category_id", "behavior_type", "timestamp")
# 2017-11-25 00:00 in Beijing (UTC+8), where the public log's documented
# range starts; the 35 earlier events of the sample are dropped, as users of
# the full log do.
TAOBAO_FIRST_SECOND = 1_511_539_200


def import_taobao_userbehavior(source_root: contract.PathLike) -> contract.Dataset:
  """Imports the Taobao UserBehavior sample: every event is a positive.

  Page views, carts, favourites and buys all become interactions (label 1.0)
  with the behaviour as `event`, and each item's category id as its
  category. The sample file ends in the middle of a row (../shared/data's
  README): that last row alone is dropped, with its user's earlier events
  kept; any other short row is an error naming its line. Events before
  `TAOBAO_FIRST_SECOND` are dropped.

  Args:
    source_root: The folder holding `taobao-userbehavior-sample/`.

  Returns:
    The dataset with items (category only: the log has ids, no text); no
    user attributes.
  """
  path = storage.join(source_root, "taobao-userbehavior-sample", "UserBehavior.csv")
  _require_raw_file(path, source_root)
  with storage.open_file(path) as stream:
    lines = stream.read().decode("utf-8").splitlines()
  if lines and len(lines[-1].split(",")) < len(TAOBAO_COLUMNS):
    lines.pop()  # The sample's cut last row.
  rows = [line.split(",") for line in lines]
  for line_number, fields in enumerate(rows, start=1):
    if len(fields) != len(TAOBAO_COLUMNS):
      raise contract_rules.DataValidationError(
          path, f"expected {len(TAOBAO_COLUMNS)} comma-separated fields "
          f"({', '.join(TAOBAO_COLUMNS)}), found {len(fields)}",
          row=line_number, field=TAOBAO_COLUMNS[min(len(fields),
                                                   len(TAOBAO_COLUMNS) - 1)])
  events = pd.DataFrame(rows, columns=list(TAOBAO_COLUMNS), dtype=str)
  interactions = contract.normalize_interactions(pd.DataFrame({
    "user_id": events["user_id"],
    "item_id": events["item_id"],
    "timestamp": events["timestamp"],
    "label": 1.0,
    "event": events["behavior_type"],
  }), contract_rules.RowLocator(str(path), "line",
                                line_numbers=range(1, len(rows) + 1)))
  in_range = interactions["timestamp"] >= TAOBAO_FIRST_SECOND
  categories = events.drop_duplicates("item_id")
  items = pd.DataFrame({"item_id": categories["item_id"],
                        "category": "taobao_cat_" + categories["category_id"]})
  return contract.Dataset(
    interactions=interactions[in_range].reset_index(drop=True),
    items=contract.normalize_items(items, "taobao-userbehavior-sample items"),
  )


IMPORTERS: dict[str, Callable[[contract.PathLike], contract.Dataset]] = {
  "movielens-100k": import_movielens_100k,
  "amazon-grocery": import_amazon_grocery,
  "amazon-video-games": import_amazon_video_games,
  "amazon-video-games-swapped": functools.partial(import_amazon_video_games,
                                                  video_domain="video_game"),
  "amazon-books-movies": import_amazon_books_movies,
  "amazon-books-movies-dense": import_amazon_books_movies_dense,
  "hm-fashion": import_hm_fashion,
  "taobao-userbehavior-sample": import_taobao_userbehavior,
}


def import_dataset(
  name: str, source_root: contract.PathLike, output_dir: contract.PathLike
) -> pathlib.Path | str:
  """Runs the adapter `name` and writes its dataset as a CSV contract directory.

  Args:
    name: A key of `IMPORTERS`.
    source_root: The folder holding the raw datasets, usually
      `default_source_root()`.
    output_dir: Where to write the contract files: a local folder or a URI
      such as `s3://bucket/datasets/ml`.

  Returns:
    `output_dir`: a `pathlib.Path` for a local folder, else the URI.
  """
  if name not in IMPORTERS:
    raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(IMPORTERS))}")
  storage.check_access(output_dir, write=True)
  dataset = IMPORTERS[name](source_root)
  return contract.write_dataset(dataset, output_dir, fmt="csv")


def read_raw_tsv(path: contract.PathLike, source_root: contract.PathLike) -> pd.DataFrame:
  """Reads a raw tab-separated file as strings, dropping RecBole's `:type` header suffixes."""
  _require_raw_file(path, source_root)
  with storage.open_file(path) as stream:
    frame = pd.read_csv(stream, sep="\t", dtype=str, keep_default_na=False,
                        quoting=csv.QUOTE_NONE)
  frame.columns = [name.split(":")[0] for name in frame.columns]
  return frame


def read_raw_csv(path: contract.PathLike, source_root: contract.PathLike) -> pd.DataFrame:
  """Reads a raw comma-separated file with a header, every value as a string."""
  _require_raw_file(path, source_root)
  with storage.open_file(path) as stream:
    return pd.read_csv(stream, dtype=str, keep_default_na=False)


def _require_raw_file(path: contract.PathLike, source_root: contract.PathLike) -> None:
  if not storage.isfile(path):
    raise FileNotFoundError(
      f"raw data file not found: {path}; see {storage.join(source_root, 'README.md')} "
      f"for what belongs there, or set ${DATA_DIR_ENV_VAR} to the data folder"
    )


def _domain_interactions(
  path: contract.PathLike, rows: pd.DataFrame, item_type: str, event: str | pd.Series,
  first_line: int,
) -> pd.DataFrame:
  """Validates one domain file's rows as interactions of `item_type`.

  Item ids are per domain, so they are prefixed with the item type ("video:5",
  "item:5") to stay distinct in one item vocabulary. The domain files have no
  timestamps: a row's timestamp is its position in its file (`rows.index`,
  which dropping rows keeps), so each user's rows keep file order.

  Args:
    path: The domain file, named in validation errors.
    rows: Its rows as read, with `user_id` and `item_id` columns.
    item_type: "video" or "item".
    event: Every row's event, or one per row.
    first_line: The line of the file's first data row (2 below a header), so
      that errors name the line a bad row is on.

  Returns:
    The rows in the contract's interaction columns, labels 1.0.
  """
  interactions = pd.DataFrame({
    "user_id": rows["user_id"],
    "item_id": item_type + ":" + rows["item_id"],
    "timestamp": rows.index,
    "label": 1.0,
    "event": event,
    "item_type": item_type,
  })
  return contract.normalize_interactions(interactions, contract_rules.RowLocator(
      str(path), "line", line_numbers=rows.index + first_line))


def _dbpedia_title(resource: str) -> str:
  """The name a DBpedia resource id spells: "res:Where's_My_Cow%3F" -> "Where's My Cow?"."""
  return urllib.parse.unquote(resource.removeprefix("res:")).replace("_", " ")


def _join_unique_ids(*id_lists: str) -> str:
  """Joins python-list strings like "[6285, 194]" into "6285|194", first occurrence first."""
  ids: dict[str, None] = {}
  for text in id_lists:
    if text.strip() not in _EMPTY_ID_LISTS:
      ids.update(dict.fromkeys(_ID_LIST_TOKEN.findall(text)))
  return contract.LIST_SEPARATOR.join(ids)
