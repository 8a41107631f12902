"""Benchmarks COURIER's image encoder against generic image pre-training.

COURIER's claim (arXiv 2306.05001) is that an image encoder pre-trained on
user intentions gives a CTR ranker more than one pre-trained without users
(SimCLR and the like), on top of the features the ranker already has. This
measures that on H&M's real product photos (`../shared/data/hm-fashion`).

Data (`seminar_long_data.build`): H&M's purchases, exact repeats (one row per
unit bought) dropped as the pipeline does; a time split by calendar day: the
purchases of the last `--test_days` days are test targets, those of the
`--valid_days` days before validation targets, all earlier ones train
targets. Each target reads the customer's `--history_length` most recent
earlier purchases; `--negatives` negatives per positive are drawn from the
articles bought on the positive's day, by that day's popularity, never one
the customer bought. The evaluation set is the same for every row and seed.

Every row trains the same DIN + DCN-v2 ranker (`models.ctr.ranking`) on id
embeddings and the article's category and title features (TF-IDF of H&M's
index group, product group, product type and department names and the title
words; only the 4,116 articles in H&M's articles file have them, the others
a zero row, see ../shared/data/README.md), plus, per row, one frozen image
embedding table from the same image encoder (`SmallCnn`, the product's
default) on the same decoded photos (the product's Beam decoding step):

  no_image: no image feature;
  random_encoder: the encoder untrained (its seeded initialisation);
  simclr: SimCLR, two augmented views per article
    (`image_pretraining.AugmentationContrastive`), the paper's generic
    baseline;
  supervised: a product type classifier on the articles that have one
    (`image_pretraining.SupervisedImageClassifier`);
  courier: COURIER with images (`courier.Courier`: user-intention
    reconstruction with the contrastive term, over the content features
    and the image embedding), its image branch's output.

Same budget: every pre-trainer runs `--pretrain_epochs` epochs of the same
number of gradient steps (enough for the largest of COURIER's train
positives and the catalogue to be seen once; each objective's own inputs
are cycled to that length), the same batch size and learning rate. Their
wall times differ (COURIER encodes every history image of a batch) and are
reported. The ranker reads each image table with its rows scaled to unit
length, so that the objectives' different output scales do not decide the
comparison. Each seed re-runs every pre-training and ranker. Metrics: AUC,
GAUC (per-customer AUC weighted by examples) and log loss on test; the
ranker stops early on validation AUC.

With `--pretrain_epoch_candidates`, the pre-training length is chosen the
same way, per objective and seed: the ranker is trained on each objective's
table after each of those epochs (and the last), and the table with the
best validation AUC is the row's; every candidate's validation and test AUC
is kept in the JSON.

    python -m benchmarks.courier_images
    python -m benchmarks.courier_images --pretrain_epochs 12 \
        --pretrain_epoch_candidates 2 4 6 8 10
    python -m benchmarks.courier_images --merge A.json B.json:simclr,courier

Writes `benchmarks/results/courier_images.json` and prints the table.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import tempfile
import time
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import tensorflow as tf

from benchmarks import common
from benchmarks import courier as courier_benchmark
from benchmarks import seminar_long_data
from data import contract
from data import features
from data import importers
from data import item_vectors
from models import learning_curve
from models import training
from models.ctr import content_features
from models.ctr import courier
from models.ctr import image_pretraining
from models.seminar import ctr_ranker
from offline_eval import datasets
from offline_eval import protocols
from offline_eval import reporting
from transforms import item_images

DATASET = "hm-fashion"
VARIANTS = ("no_image", "random_encoder", "simclr", "supervised", "courier")
GENERIC = ("random_encoder", "simclr", "supervised")
PRETRAINED = ("simclr", "supervised", "courier")
_LABELS = {"no_image": "(a) no image",
           "random_encoder": "(b) frozen random encoder",
           "simclr": "(c) SimCLR (augmentation contrastive)",
           "supervised": "(d) supervised by product type",
           "courier": "(e) COURIER (user intentions)"}
_PRODUCT_TYPE = importers.HM_CATEGORY_COLUMNS.index("product_type_name")
_RESULTS = common.RESULTS_DIR / "courier_images.json"


def ranker_inputs(examples: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """`seminar_long_data` examples as `models.ctr.ranking` reads them (user
  index 0 is padding there, so users start at 1)."""
  return {features.USER_INDEX: examples["user"].astype(np.int64) + 1,
          features.ITEM_INDEX: examples[ctr_ranker.CANDIDATE].astype(np.int64),
          features.HISTORY_ITEM_INDICES:
              examples[ctr_ranker.HISTORY].astype(np.int64),
          features.LABEL: examples[ctr_ranker.LABEL].astype(np.int64)}


def pretrain_positives(train: Mapping[str, np.ndarray],
                       per_user: int) -> dict[str, np.ndarray]:
  """COURIER's inputs: each customer's `per_user` latest train positives
  with their histories."""
  positive = np.flatnonzero(train[ctr_ranker.LABEL] == 1)
  users = train["user"][positive]
  # Examples are in time order per customer: count positions from the end.
  from_end = pd.Series(users).groupby(users).cumcount(ascending=False)
  kept = positive[from_end.to_numpy() < per_user]
  return {features.ITEM_INDEX: train[ctr_ranker.CANDIDATE][kept].astype(np.int64),
          features.HISTORY_ITEM_INDICES:
              train[ctr_ranker.HISTORY][kept].astype(np.int64)}


def item_content(items: pd.DataFrame, item_ids: Sequence[str]) -> np.ndarray:
  """`[num_items, width]` TF-IDF of each item's categories and title words;
  zero for items without a row in `items` (and for padding)."""
  tokens_of = datasets.contract_item_tokens(items)
  token_index: dict[str, int] = {}
  rows = [[token_index.setdefault(token, len(token_index) + 1)
           for token in tokens_of.get(item_id, [])] for item_id in item_ids]
  width = max(map(len, rows))
  matrix = np.zeros((len(rows), width), np.int64)
  for row, tokens in enumerate(rows):
    matrix[row, :len(tokens)] = tokens
  return content_features.token_vectors(matrix, len(token_index) + 1)


def product_types(items: pd.DataFrame,
                  item_ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
  """Each item's product type class (-1 without one) and the class names."""
  type_of = {item_id: category.split(contract.LIST_SEPARATOR)[_PRODUCT_TYPE]
             for item_id, category in zip(items["item_id"], items["category"])}
  names = sorted(set(type_of.values()) - {""})
  index = {name: position for position, name in enumerate(names)}
  return np.array([index.get(type_of.get(item_id, ""), -1)
                   for item_id in item_ids], np.int64), names


def decode_images(images_uri: str, item_ids: Sequence[str], height: int,
                  width: int) -> courier.ItemImages:
  """Every item's photo, decoded by the product's Beam step."""
  with tempfile.TemporaryDirectory() as output_dir:
    summary = item_images.decode_catalogue_images(images_uri, item_ids,
                                                  output_dir, height, width)
    common.log(f"images: {summary.in_words()}")
    return courier.ItemImages(*item_images.read_decoded_images(
        output_dir, item_ids, height, width))


def cycled(inputs: Mapping[str, np.ndarray], length: int,
           seed: int) -> dict[str, np.ndarray]:
  """`inputs` shuffled and repeated (or cut) to `length` rows."""
  size = len(next(iter(inputs.values())))
  order = np.resize(np.random.default_rng(seed).permutation(size), length)
  return {name: values[order] for name, values in inputs.items()}


def pretrain(variant: str, content: np.ndarray, images: courier.ItemImages,
             positives: Mapping[str, np.ndarray], classes: np.ndarray,
             args, seed: int) -> tuple[dict[int, np.ndarray], list[float]]:
  """One objective's image embedding table after each of
  `args.pretrain_epoch_candidates` epochs and the last (the untrained
  encoder's under epoch 0), and its loss per epoch."""
  tf.keras.utils.set_random_seed(seed)
  config = courier.CourierConfig(
      encoder_units=(args.encoder_hidden, args.embedding_dim),
      temperature=args.courier_temperature,
      learning_rate=args.pretrain_learning_rate,
      epochs=args.pretrain_epochs, batch_size=args.pretrain_batch_size,
      image_height=args.image_height, image_width=args.image_width,
      image_filters=tuple(args.image_filters),
      image_embedding_dim=args.image_embedding_dim)
  encoder = courier.build_image_encoder(config)
  length = args.pretrain_batch_size * steps_per_epoch(
      len(positives[features.ITEM_INDEX]), len(images.images) - 1,
      args.pretrain_batch_size)
  if variant == "random_encoder":
    return {0: image_pretraining.encoder_table(encoder, images)}, []
  if variant == "courier":
    model = courier.Courier(content, config, images, encoder)
    inputs = cycled(positives, length, seed)
    table_now = functools.partial(courier.image_embedding_table,
                                  model.encoder)
  else:
    model = image_pretraining.objective_model(
        variant, images, encoder,
        projection_units=(args.encoder_hidden, args.embedding_dim),
        temperature=args.simclr_temperature, classes=classes)
    inputs = cycled(image_pretraining.objective_examples(variant, images,
                                                         classes),
                    length, seed)
    table_now = functools.partial(image_pretraining.encoder_table, encoder,
                                  images)
  candidates = set(args.pretrain_epoch_candidates) | {config.epochs}
  tables = {}

  def keep_candidate(epoch: int, logs=None) -> None:
    del logs  # Keras passes the epoch's losses.
    if epoch + 1 in candidates:
      tables[epoch + 1] = table_now()

  history = training.fit(
      model, training.shuffled_batches(inputs, config.batch_size, seed),
      config.learning_rate, config.epochs,
      callbacks=[tf.keras.callbacks.LambdaCallback(
          on_epoch_end=keep_candidate)])
  losses = [round(value, 4) for value in history["loss"]]
  common.log(f"    {variant}: pre-training loss by epoch {losses}")
  return tables, losses


def save_table(path: pathlib.Path, item_ids: Sequence[str],
               table: np.ndarray) -> None:
  """An image table as an `item_id -> vector` file (`data.item_vectors`'s
  `.npz`), the padding row left out: another benchmark's image feature."""
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez(path, **{item_vectors.ID_COLUMN: np.asarray(item_ids[1:]),
                    item_vectors.VECTOR_COLUMN: table[1:]})
  common.log(f"    wrote {path}")


def steps_per_epoch(num_positives: int, num_items: int, batch_size: int) -> int:
  """The common budget: every objective's steps in one epoch."""
  return -(-max(num_positives, num_items) // batch_size)


def ranker_fit(num_users: int, num_items: int,
               splits: Mapping[str, Mapping[str, np.ndarray]],
               content: np.ndarray, table: np.ndarray | None, args,
               seed: int) -> tuple[dict, learning_curve.LearningCurve]:
  """The ranker over one image table (or none): its test metrics, validation
  AUC and kept epoch, and its learning curve."""
  test = splits["test"]
  logits, curve = courier_benchmark.train_and_score(
      num_users, num_items, splits["train"], splits["valid"], test, content,
      args, seed, image_table=None if table is None else
      content_features.l2_normalize_rows(table))
  labels = test[features.LABEL]
  return {"auc": protocols.auc(labels, logits),
          "gauc": protocols.gauc(test[features.USER_INDEX], labels, logits),
          "log_loss": protocols.log_loss(labels, logits),
          "valid_auc": curve.points[curve.best - 1].validation,
          "epoch": curve.best, "epochs_trained": len(curve.points)}, curve


def best_pretrain_epoch(valid_aucs: Mapping[int | None, float]
                        ) -> int | None:
  """The pre-training epoch whose table gave the ranker the best validation
  AUC, the earlier on a tie (None: the row has no table)."""
  return max(valid_aucs, key=lambda epoch: (valid_aucs[epoch], -(epoch or 0)))


def run(args) -> dict:
  """Every row and seed on H&M."""
  started = time.time()
  dataset = seminar_long_data.load(DATASET, args.source_root)
  task = seminar_long_data.build(dataset, args.history_length, args.negatives,
                                 valid_days=args.valid_days,
                                 test_days=args.test_days, seed=args.data_seed)
  splits = {name: ranker_inputs(examples)
            for name, examples in task.splits.items()}
  num_users = int(max(split[features.USER_INDEX].max()
                      for split in splits.values())) + 1
  content = item_content(dataset.items, task.item_ids)
  classes, class_names = product_types(dataset.items, task.item_ids)
  positives = pretrain_positives(task.splits["train"],
                                 args.max_pretrain_positives_per_user)
  images = decode_images(str(args.images), task.item_ids, args.image_height,
                         args.image_width)
  test = splits["test"]
  common.log(
      f"H&M: {num_users - 1} customers, {task.num_items - 1} articles "
      f"({int((classes >= 0).sum())} with a product type of "
      f"{len(class_names)}), "
      + ", ".join(f"{len(split[features.LABEL])} {name}"
                  for name, split in splits.items())
      + f" CTR examples, {len(positives[features.ITEM_INDEX])} COURIER "
      f"positives ({time.time() - started:.0f} s)")
  runs = {variant: [] for variant in args.variants}
  curves = {variant: [] for variant in args.variants}
  for seed in args.seeds:
    for variant in args.variants:
      tick = time.time()
      tables, losses = ({None: None}, []) if variant == "no_image" else (
          pretrain(variant, content, images, positives, classes, args, seed))
      pretrain_s = time.time() - tick
      fits = {epoch: ranker_fit(num_users, task.num_items, splits, content,
                                table, args, seed)
              for epoch, table in tables.items()}
      chosen = best_pretrain_epoch(
          {epoch: fit["valid_auc"] for epoch, (fit, _) in fits.items()})
      metrics, curve = fits[chosen]
      if args.save_tables and tables[chosen] is not None:
        save_table(args.save_tables / f"{variant}_seed{seed}.npz",
                   task.item_ids, tables[chosen])
      curves[variant].append(curve.to_json())
      metrics.update(pretrain_s=pretrain_s,
                     ranker_s=time.time() - tick - pretrain_s,
                     pretrain_losses=losses, seed=seed)
      if tables[chosen] is not None:
        metrics["embedding_variance"] = courier.embedding_variance(
            tables[chosen])
      if variant in PRETRAINED:
        metrics.update(pretrain_epoch=chosen, pretrain_candidates=[
            {"pretrain_epoch": epoch, "valid_auc": fit["valid_auc"],
             "auc": fit["auc"]} for epoch, (fit, _) in fits.items()])
      runs[variant].append(metrics)
      common.log(f"  seed {seed} {variant}: AUC {metrics['auc']:.4f} GAUC "
                 f"{metrics['gauc']:.4f} log loss {metrics['log_loss']:.4f}, "
                 f"epoch {curve.best} of {len(curve.points)}"
                 + (f" on pre-training epoch {chosen} of {sorted(fits)}"
                    if len(fits) > 1 else "")
                 + f" (pre-train {pretrain_s:.0f} s, ranker "
                 f"{metrics['ranker_s']:.0f} s)")
  popularity = np.bincount(
      splits["train"][features.ITEM_INDEX][
          splits["train"][features.LABEL] == 1],
      minlength=task.num_items)[test[features.ITEM_INDEX]].astype(np.float64)
  return {
      "num_customers": num_users - 1, "num_articles": task.num_items - 1,
      "articles_with_product_type": int((classes >= 0).sum()),
      "product_types": len(class_names),
      "examples": {name: len(split[features.LABEL])
                   for name, split in splits.items()},
      "courier_positives": len(positives[features.ITEM_INDEX]),
      "pretrain_steps_per_epoch": steps_per_epoch(
          len(positives[features.ITEM_INDEX]), task.num_items - 1,
          args.pretrain_batch_size),
      "popularity_baseline": {
          "auc": protocols.auc(test[features.LABEL], popularity),
          "gauc": protocols.gauc(test[features.USER_INDEX],
                                 test[features.LABEL], popularity)},
      **summarised(runs), "learning_curves": curves,
      "wall_s": time.time() - started}


def summarised(runs: Mapping[str, list[dict]]) -> dict:
  """Each row's mean ± std over its seeds, its pre-training losses, and
  the runs themselves."""
  return {
      "variants": {variant: reporting.aggregate_seeds(
          [{k: v for k, v in run.items()
            if k not in ("pretrain_losses", "pretrain_candidates", "seed")}
           for run in seed_runs])
                   for variant, seed_runs in runs.items()},
      "pretrain_losses": {variant: [run["pretrain_losses"] for run in
                                    seed_runs]
                          for variant, seed_runs in runs.items()},
      "per_seed": dict(runs)}


def merge(sources: Sequence[str]) -> dict:
  """One result from rows run in separate processes.

  Args:
    sources: `PATH` (every row of that result file) or
      `PATH:ROW,ROW` (only those rows), e.g. the rows a tuning run
      re-ran with other settings. A row's seeds from several sources are
      joined and sorted by seed.

  Returns:
    The result of `run`, with `sources`: each file's rows, command and
    arguments.

  Raises:
    ValueError: if the sources hold different examples, a seed twice for
      one row, or rows with different seeds.
  """
  runs: dict[str, list[dict]] = {}
  curves: dict[str, list] = {}
  parts, first = [], None
  for source in sources:
    path, rows = common.merge_source(source)
    payload = json.loads(pathlib.Path(path).read_text())
    result = payload["results"][DATASET]
    if first is None:
      first = result
    elif result["examples"] != first["examples"]:
      raise ValueError(f"{path}: other examples than {sources[0]}")
    kept = rows or list(result["per_seed"])
    for variant in kept:
      for run, curve, seed in zip(result["per_seed"][variant],
                                  result["learning_curves"][variant],
                                  payload["args"]["seeds"]):
        # Rows of files written before rows carried their seed.
        runs.setdefault(variant, []).append({"seed": seed, **run})
        curves.setdefault(variant, []).append(curve)
    parts.append({"path": path, "rows": kept, "command": payload["command"],
                  "args": payload["args"], "wall_s": payload["wall_s"]})
  seeds = None
  for variant, seed_runs in runs.items():
    order = sorted(range(len(seed_runs)), key=lambda i: seed_runs[i]["seed"])
    runs[variant] = [seed_runs[i] for i in order]
    curves[variant] = [curves[variant][i] for i in order]
    variant_seeds = [run["seed"] for run in runs[variant]]
    if len(set(variant_seeds)) != len(variant_seeds):
      raise ValueError(f"row {variant} has a seed twice: {variant_seeds}")
    if seeds not in (None, variant_seeds):
      raise ValueError(f"row {variant} has seeds {variant_seeds}, "
                       f"others {seeds}")
    seeds = variant_seeds
  kept_keys = {"variants", "pretrain_losses", "per_seed", "learning_curves",
               "wall_s"}
  return {**{k: v for k, v in first.items() if k not in kept_keys},
          **summarised(runs), "learning_curves": curves, "sources": parts}


def goal(result: Mapping) -> dict:
  """COURIER against the best generic row, per seed: the issue's goal is
  +0.3 AUC points over it in every seed, and above no image (`met` is None
  unless every row ran)."""
  per_seed = result["per_seed"]
  if set(per_seed) != set(VARIANTS):
    return {"met": None}
  seeds = range(len(per_seed["courier"]))
  best_generic = [max(per_seed[variant][seed]["auc"] for variant in GENERIC)
                  for seed in seeds]
  margins = [per_seed["courier"][seed]["auc"] - best_generic[seed]
             for seed in seeds]
  over_no_image = [per_seed["courier"][seed]["auc"]
                   - per_seed["no_image"][seed]["auc"] for seed in seeds]
  return {"auc_margin_over_best_generic": margins,
          "auc_margin_over_no_image": over_no_image,
          "met": all(m >= 0.003 for m in margins)
                 and all(m > 0 for m in over_no_image)}


def markdown(result: Mapping) -> str:
  """The table; the strongest row by mean test AUC is named."""
  variants = result["variants"]
  present = [variant for variant in VARIANTS if variant in variants]
  strongest = max(present, key=lambda v: variants[v]["auc"]["mean"])
  base = variants.get("no_image", {}).get("auc", {}).get("mean", np.nan)
  chosen_epochs = any("pretrain_epoch" in variants[v] for v in present)
  rows = []
  for variant in present:
    stats = variants[variant]
    rows.append([
        _LABELS[variant] + (" (strongest)" if variant == strongest else ""),
        reporting.format_mean_std(stats["auc"]),
        reporting.format_mean_std(stats["gauc"]),
        reporting.format_mean_std(stats["log_loss"]),
        f"{stats['auc']['mean'] - base:+.4f}",
        "/".join(str(int(epoch)) for epoch in stats["epoch"]["values"]),
        *(["/".join(str(int(epoch))
                    for epoch in stats["pretrain_epoch"]["values"])
           if "pretrain_epoch" in stats else "–"] if chosen_epochs else []),
        f"{stats['pretrain_s']['mean']:.0f}",
        f"{stats['ranker_s']['mean']:.0f}"])
  pop = result["popularity_baseline"]
  rows.append(["train popularity (reference)", f"{pop['auc']:.4f}",
               f"{pop['gauc']:.4f}", "–", "", "", *([""] * chosen_epochs),
               "–", "–"])
  headers = ["image feature", "test AUC", "test GAUC", "test log loss",
             "ΔAUC vs (a)", "kept epoch per seed",
             *(["pre-train epoch per seed"] * chosen_epochs), "pre-train s",
             "ranker s"]
  table = reporting.markdown_table(headers, rows)
  outcome = result["goal"]
  if outcome["met"] is None:
    return table
  margins = ", ".join(f"{m:+.4f}"
                      for m in outcome["auc_margin_over_best_generic"])
  return (table +
          f"\n\nCOURIER minus the best generic row's AUC, per seed: {margins} "
          f"(goal: +0.0030 in every seed and above no image: "
          f"{'met' if outcome['met'] else 'not met'})")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--source_root", type=pathlib.Path,
                      default=pathlib.Path(importers.default_source_root()),
                      help="the folder holding hm-fashion/")
  parser.add_argument("--images", default="",
                      help="the photos (default: hm-fashion/images_64x96.zip "
                           "under --source_root)")
  parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
  parser.add_argument("--data_seed", type=int, default=0,
                      help="seed of the negative sampling")
  parser.add_argument("--negatives", type=int, default=4,
                      help="negatives per positive")
  parser.add_argument("--history_length", type=int, default=10)
  parser.add_argument("--test_days", type=int, default=28)
  parser.add_argument("--valid_days", type=int, default=28)
  parser.add_argument("--max_pretrain_positives_per_user", type=int,
                      default=10, help="COURIER's train positives per "
                      "customer, the most recent")
  courier_benchmark.add_ranker_arguments(parser)
  parser.add_argument("--embedding_dim", type=int, default=32,
                      help="COURIER's item embedding and SimCLR's head output")
  parser.add_argument("--encoder_hidden", type=int, default=128)
  parser.add_argument("--courier_temperature", type=float, default=0.5,
                      help="COURIER's InfoNCE temperature (at 0.1 its "
                      "embeddings collapse on H&M)")
  parser.add_argument("--simclr_temperature", type=float, default=0.1)
  parser.add_argument("--variants", nargs="+", choices=VARIANTS,
                      default=list(VARIANTS), help="the rows to run")
  parser.add_argument("--pretrain_epochs", type=int, default=4)
  parser.add_argument("--pretrain_epoch_candidates", type=int, nargs="+",
                      default=[], metavar="EPOCH",
                      help="also train the ranker on each objective's table "
                      "after these pre-training epochs (and the last); the "
                      "one with the best validation AUC is the row's")
  parser.add_argument("--pretrain_batch_size", type=int, default=256)
  parser.add_argument("--pretrain_learning_rate", type=float, default=0.001)
  parser.add_argument("--image_height", type=int, default=96)
  parser.add_argument("--image_width", type=int, default=64)
  parser.add_argument("--image_filters", type=int, nargs="+",
                      default=[16, 32, 64])
  parser.add_argument("--image_embedding_dim", type=int, default=32)
  parser.add_argument("--merge", nargs="+", default=None,
                      metavar="JSON[:ROW,...]",
                      help="only report: join the rows of these result files "
                      "(all rows, or those named after the colon)")
  parser.add_argument("--save_tables", type=pathlib.Path, default=None,
                      help="a folder: each pre-trained image table is written "
                      "there as <variant>_seed<seed>.npz, an item_id -> "
                      "vector file (e.g. seminar_long --image-vectors)")
  parser.add_argument("--output", type=pathlib.Path, default=_RESULTS)
  args = parser.parse_args(argv)
  if not args.images:
    args.images = args.source_root / DATASET / "images_64x96.zip"
  outside = [epoch for epoch in args.pretrain_epoch_candidates
             if not 1 <= epoch <= args.pretrain_epochs]
  if outside:
    parser.error(f"--pretrain_epoch_candidates {outside}: not within 1.."
                 f"{args.pretrain_epochs} (--pretrain_epochs)")
  return args


def main(argv: Sequence[str] | None = None) -> None:
  args = parse_args(argv)
  started = time.time()
  result = merge(args.merge) if args.merge else run(args)
  result["goal"] = goal(result)
  print(markdown(result), flush=True)
  common.write_results(args.output, {
      "command": common.command("benchmarks.courier_images", argv),
      "args": {k: str(v) if isinstance(v, pathlib.Path) else v
               for k, v in vars(args).items()},
      "machine": common.machine(),
      "wall_s": round(time.time() - started, 1),
      "results": {DATASET: result}})


if __name__ == "__main__":
  main()
