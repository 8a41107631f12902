"""Benchmarks COURIER content embeddings as features of a CTR ranking model.

For each dataset (Amazon Grocery, MovieLens-100K; `offline_eval.datasets`,
leave-one-out by time) and each seed, the DIN + DCN-v2 ranking model
(`models.ctr.ranking`) is trained with five item feature sets, all in one run:

  (a) no_content: item/user id embeddings only;
  (b) raw_content: plus the raw content vectors (`models.ctr.content_features`);
  (c) feature_dropout: plus frozen embeddings of the same content encoder
      pre-trained with a generic objective (two feature-dropout views of the
      same item, InfoNCE);
  (d) courier: plus frozen COURIER embeddings (user-intention reconstruction
      with InfoNCE);
  (e) courier_no_contrastive: plus frozen embeddings pre-trained with the
      reconstruction loss only (collapse expected; the embedding variance is
      reported).

CTR examples (the interaction logs are implicit, so clicks are built):
  - a positive is a real next interaction: a train position t >= 1 of a
    user's sequence (the user's `--max_positives_per_user` most recent ones,
    to fit the shared 2-core budget), with the items before it (at most
    `--history_length`) as the history;
  - each positive gets `--negatives` negatives with the same user and
    history: items the user never interacted with (train, valid or test),
    drawn from the train popularity distribution by the pipeline's own
    sampler (`data.example_rows.sample_popular_negatives`), with a fixed seed
    (`--data_seed`), so that the task is not "popular vs. unpopular";
  - test: each user's held-out future, i.e. the test item with the whole
    train sequence plus the validation item as history, and its negatives
    drawn the same way. The evaluation set is identical for every row and
    seed;
  - validation: each user's validation item (the leave-one-out split's, never
    a test item) with the train sequence as history, and its negatives, drawn
    by a second generator so that the train and test draws do not depend on
    it. The ranker stops early on its AUC (`models.early_stopping`, the
    pipeline's mechanism: at most `--epochs`, `--patience` epochs without a
    better AUC) and is tested with the best epoch's weights; the learning
    curve of every variant and seed goes into the JSON.
Pre-training (c)-(e) uses only train positions (the user's
`--max_pretrain_positives_per_user` most recent; (c) takes as many gradient
steps over the item catalogue). Each seed re-runs pre-training and ranker
training; the data (negatives) are the same for all seeds. Metrics: AUC
over all test examples and GAUC (per-user AUC weighted by the user's example
count), by `offline_eval.protocols`.

    python -m benchmarks.courier
    python -m benchmarks.courier --dataset contract --dataset-dir DIR

Writes `benchmarks/results/courier.json` and prints one table per dataset.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import time
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from benchmarks import common
from data import example_rows
from data import features
from models.ctr import content_features
from models.ctr import courier
from models.ctr import ranking
from models.ctr import validation as ctr_validation
from models import early_stopping
from models import learning_curve
from models import training
from offline_eval import datasets
from offline_eval import protocols
from offline_eval import reporting

VARIANTS = ("no_content", "raw_content", "feature_dropout", "courier",
            "courier_no_contrastive")
_LABELS = {"no_content": "(a) no content features",
           "raw_content": "(b) raw content features",
           "feature_dropout": "(c) generic contrastive (feature-dropout views)",
           "courier": "(d) COURIER",
           "courier_no_contrastive": "(e) COURIER without contrastive term"}
_PRETRAINED = ("feature_dropout", "courier", "courier_no_contrastive")
_RESULTS = common.RESULTS_DIR / "courier.json"
_SCORE_BATCH = 8192


@dataclasses.dataclass(frozen=True)
class CtrExamples:
  """Click examples: one row per (user, candidate item, history)."""
  users: np.ndarray
  items: np.ndarray
  histories: np.ndarray
  labels: np.ndarray

  def as_inputs(self) -> dict[str, np.ndarray]:
    return {features.USER_INDEX: self.users, features.ITEM_INDEX: self.items,
            features.HISTORY_ITEM_INDICES: self.histories,
            features.LABEL: self.labels}


def _padded(sequence: np.ndarray, length: int) -> np.ndarray:
  row = np.zeros(length, np.int64)
  recent = sequence[-length:]
  row[:len(recent)] = recent
  return row


def build_ctr_examples(dataset: datasets.SequenceDataset, history_length: int,
                       negatives: int, seed: int, max_positives: int,
                       max_pretrain_positives: int
                       ) -> tuple[CtrExamples, CtrExamples, CtrExamples,
                                  dict[str, np.ndarray]]:
  """Click examples of each split, and the train positives for pre-training.

  Args:
    dataset: the leave-one-out split.
    history_length: most recent history items kept.
    negatives: sampled negatives per positive.
    seed: seed of the negative sampling.
    max_positives: CTR train positives per user, the most recent ones.
    max_pretrain_positives: pre-training positives per user, most recent.

  Returns:
    `(train, valid, test, positives)`: `positives` holds the pre-training
    positives' `features.ITEM_INDEX` and `features.HISTORY_ITEM_INDICES`.
  """
  rng = np.random.default_rng(seed)
  # Validation negatives come from their own generator: the train and test
  # draws are the ones the benchmark drew before it had a validation split.
  valid_rng = np.random.default_rng([seed, 1])
  counts = dataset.train_counts().astype(np.float64)
  probability = counts / counts.sum()
  catalogue = np.arange(dataset.num_items)
  parts = {split: ([], [], [], []) for split in ("train", "valid", "test")}
  pretrain_items, pretrain_histories = [], []
  for user, sequence in enumerate(dataset.train_sequences):
    excluded = set(dataset.interacted(user).tolist())
    for t in range(max(1, len(sequence) - max_pretrain_positives), len(sequence)):
      pretrain_items.append(sequence[t])
      pretrain_histories.append(_padded(sequence[:t], history_length))
    cases = [("train", sequence[t], sequence[:t])
             for t in range(max(1, len(sequence) - max_positives), len(sequence))]
    cases.append(("test", dataset.test_items[user],
                  np.append(sequence, dataset.valid_items[user])))
    sampled = np.array(example_rows.sample_popular_negatives(
        rng, catalogue, probability, excluded, negatives * len(cases)),
                       np.int64)
    cases.append(("valid", dataset.valid_items[user], sequence))
    sampled = np.concatenate([sampled, np.array(
        example_rows.sample_popular_negatives(valid_rng, catalogue, probability,
                                          excluded, negatives), np.int64)])
    for case, (split, positive, history) in enumerate(cases):
      users, items, histories, labels = parts[split]
      row = _padded(np.asarray(history), history_length)
      candidates = np.concatenate(
          [[positive], sampled[case * negatives:(case + 1) * negatives]])
      users.extend([user] * len(candidates))
      items.extend(candidates)
      histories.extend([row] * len(candidates))
      labels.extend([1] + [0] * (len(candidates) - 1))
  train, valid, test = (
      CtrExamples(np.array(u, np.int64), np.array(i, np.int64), np.stack(h),
                  np.array(l, np.int64))
      for u, i, h, l in (parts["train"], parts["valid"], parts["test"]))
  positives = {features.ITEM_INDEX: np.array(pretrain_items, np.int64),
               features.HISTORY_ITEM_INDICES: np.stack(pretrain_histories)}
  return train, valid, test, positives


def dataset_content(dataset: datasets.SequenceDataset) -> np.ndarray:
  return content_features.content_vectors(
      dataset.item_tokens, len(dataset.token_names), dataset.item_relations)


def pretrain(variant: str, content: np.ndarray,
             positives: Mapping[str, np.ndarray], args, seed: int) -> np.ndarray:
  """Pre-trains a content encoder and returns its item embedding table."""
  tf.keras.utils.set_random_seed(seed)
  config = courier.CourierConfig(
      encoder_units=(args.encoder_hidden, args.embedding_dim),
      temperature=args.temperature,
      contrastive=variant != "courier_no_contrastive",
      learning_rate=args.pretrain_learning_rate, epochs=args.pretrain_epochs,
      batch_size=args.pretrain_batch_size)
  if variant == "feature_dropout":
    model = courier.FeatureDropoutContrastive(content, config,
                                              feature_dropout=args.feature_dropout)
    # As many gradient steps as COURIER takes: items repeated to the number
    # of train positives per epoch.
    items = np.resize(np.arange(1, content.shape[0]),
                      len(positives[features.ITEM_INDEX]))
    inputs = {features.ITEM_INDEX: items}
  else:
    model = courier.Courier(content, config)
    inputs = dict(positives)
  history = training.fit(
      model, training.shuffled_batches(inputs, config.batch_size, seed),
      config.learning_rate, config.epochs)
  common.log(f"    {variant}: pre-training loss by epoch "
             f"{[round(v, 4) for v in history['loss']]}")
  return courier.item_embedding_table(model.encoder)


def train_and_score(num_users: int, num_items: int,
                    train: Mapping[str, np.ndarray],
                    valid: Mapping[str, np.ndarray],
                    test: Mapping[str, np.ndarray],
                    content_table: np.ndarray | None, args, seed: int,
                    image_table: np.ndarray | None = None
                    ) -> tuple[np.ndarray, learning_curve.LearningCurve]:
  """Trains the ranker, stopping early on validation AUC.

  Args:
    num_users: user indices, padding included.
    num_items: item indices, padding included.
    train: the ranker's inputs (`CtrExamples.as_inputs`) to train on.
    valid: its inputs to stop early on.
    test: its inputs to score.
    content_table: the frozen content features, or None.
    args: the flags of `add_ranker_arguments`.
    seed: seeds the initialisation and the shuffle.
    image_table: the frozen image embeddings, or None.

  Returns:
    The best epoch's test logits, and the learning curve.
  """
  tf.keras.utils.set_random_seed(seed)
  config = ranking.RankingConfig(
      embedding_dim=args.ranking_embedding_dim,
      attention_units=(args.attention_units,), deep_units=(args.deep_units,),
      learning_rate=args.learning_rate, epochs=args.epochs,
      batch_size=args.batch_size, early_stopping_patience=args.patience)
  model = ranking.RankingModel(num_users, num_items, config,
                               content_table=content_table,
                               image_table=image_table)
  _, curve = early_stopping.fit_with_curve(
      model, training.shuffled_batches(dict(train), config.batch_size,
                                       seed, drop_remainder=False),
      ctr_validation.Validator(valid, model), config, "ranking",
      metric=ctr_validation.METRIC)
  return training.predict_in_batches(model, dict(test), _SCORE_BATCH), curve


def run_dataset(name: str, args) -> dict:
  """All variants and seeds on one dataset."""
  started = time.time()
  dataset = common.load_sequences(name, args)
  train, valid, test, positives = build_ctr_examples(
      dataset, args.history_length, args.negatives, args.data_seed,
      args.max_positives_per_user, args.max_pretrain_positives_per_user)
  content = dataset_content(dataset)
  common.log(f"{name}: {dataset.num_users} users, {dataset.num_items - 1} items, "
       f"{len(train.labels)} train / {len(valid.labels)} validation / "
       f"{len(test.labels)} test CTR examples, "
       f"{len(positives[features.ITEM_INDEX])} pre-training positives, "
       f"content width {content.shape[1]} ({time.time() - started:.0f} s)")
  popularity = dataset.train_counts()[test.items].astype(np.float64)
  baseline = {"auc": protocols.auc(test.labels, popularity),
              "gauc": protocols.gauc(test.users, test.labels, popularity)}
  runs = {variant: [] for variant in VARIANTS}
  curves = {variant: [] for variant in VARIANTS}
  for seed in args.seeds:
    tables = {}
    for variant in _PRETRAINED:
      tick = time.time()
      table = pretrain(variant, content, positives, args, seed)
      tables[variant] = (table, time.time() - tick)
    for variant in VARIANTS:
      tick = time.time()
      if variant == "no_content":
        table, pretrain_s = None, 0.0
      elif variant == "raw_content":
        table, pretrain_s = content, 0.0
      else:
        table, pretrain_s = tables[variant]
      logits, curve = train_and_score(
          dataset.num_users, dataset.num_items, train.as_inputs(),
          valid.as_inputs(), test.as_inputs(), table, args, seed)
      curves[variant].append(curve.to_json())
      metrics = {"auc": protocols.auc(test.labels, logits),
                 "gauc": protocols.gauc(test.users, test.labels, logits),
                 "valid_auc": curve.points[curve.best - 1].validation,
                 "epoch": curve.best, "epochs_trained": len(curve.points),
                 "pretrain_s": pretrain_s, "train_s": time.time() - tick}
      if variant in _PRETRAINED:
        metrics["embedding_variance"] = courier.embedding_variance(table)
      runs[variant].append(metrics)
      common.log(f"  seed {seed} {variant}: AUC {metrics['auc']:.4f} GAUC "
           f"{metrics['gauc']:.4f}, epoch {curve.best} of "
           f"{len(curve.points)} (validation AUC "
           f"{metrics['valid_auc']:.4f}) (pretrain {pretrain_s:.0f} s, "
           f"ranker {metrics['train_s']:.0f} s)")
  return {"num_users": dataset.num_users, "num_items": dataset.num_items - 1,
          "train_examples": len(train.labels),
          "valid_examples": len(valid.labels),
          "test_examples": len(test.labels),
          "content_width": int(content.shape[1]), "popularity_baseline": baseline,
          "variants": {v: reporting.aggregate_seeds(r) for v, r in runs.items()},
          "learning_curves": curves,
          "wall_s": time.time() - started}


def markdown(name: str, result: Mapping) -> str:
  """One dataset's table; deltas against (a) from the same run."""
  variants = result["variants"]
  base_auc = variants["no_content"]["auc"]["mean"]
  rows = []
  for variant in VARIANTS:
    stats = variants[variant]
    variance = (f"{stats['embedding_variance']['mean']:.4f}"
                if "embedding_variance" in stats else "–")
    rows.append([_LABELS[variant], reporting.format_mean_std(stats["auc"]),
                 reporting.format_mean_std(stats["gauc"]),
                 f"{stats['auc']['mean'] - base_auc:+.4f}",
                 reporting.format_mean_std(stats["valid_auc"]),
                 "/".join(str(int(epoch))
                          for epoch in stats["epoch"]["values"]),
                 variance, f"{stats['pretrain_s']['mean']:.0f}",
                 f"{stats['train_s']['mean']:.0f}"])
  pop = result["popularity_baseline"]
  rows.append(["train popularity (reference)", f"{pop['auc']:.4f}",
               f"{pop['gauc']:.4f}", "", "", "", "–", "–", "–"])
  headers = ["features", "test AUC", "test GAUC", "ΔAUC vs (a)",
             "validation AUC", "kept epoch per seed", "embedding variance",
             "pre-train s", "ranker s"]
  return f"### {name}\n\n" + reporting.markdown_table(headers, rows)


def add_ranker_arguments(parser: argparse.ArgumentParser) -> None:
  """The flags of the ranker `train_and_score` trains."""
  parser.add_argument("--epochs", type=int, default=10,
                      help="the most ranker epochs (early stopping)")
  parser.add_argument("--patience", type=int, default=2,
                      help="ranker epochs without a better validation AUC "
                           "before it stops")
  parser.add_argument("--batch_size", type=int, default=2048)
  parser.add_argument("--learning_rate", type=float, default=0.004)
  parser.add_argument("--ranking_embedding_dim", type=int, default=16)
  parser.add_argument("--attention_units", type=int, default=16)
  parser.add_argument("--deep_units", type=int, default=32)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_dataset_arguments(parser, datasets.DATASETS,
                               ["amazon-grocery", "movielens-100k"],
                               multiple=True)
  parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
  parser.add_argument("--data_seed", type=int, default=0,
                      help="seed of the CTR negative sampling")
  parser.add_argument("--negatives", type=int, default=4,
                      help="negatives per positive")
  parser.add_argument("--history_length", type=int, default=10)
  parser.add_argument("--max_positives_per_user", type=int, default=10,
                      help="CTR train positives per user (most recent)")
  parser.add_argument("--max_pretrain_positives_per_user", type=int, default=20,
                      help="pre-training positives per user (most recent)")
  add_ranker_arguments(parser)
  parser.add_argument("--embedding_dim", type=int, default=32,
                      help="pre-trained content embedding size")
  parser.add_argument("--encoder_hidden", type=int, default=128)
  parser.add_argument("--temperature", type=float, default=0.1)
  parser.add_argument("--feature_dropout", type=float, default=0.3)
  parser.add_argument("--pretrain_epochs", type=int, default=2)
  parser.add_argument("--pretrain_batch_size", type=int, default=256)
  parser.add_argument("--pretrain_learning_rate", type=float, default=0.003)
  parser.add_argument("--output", type=pathlib.Path, default=_RESULTS)
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
  common.run_datasets("benchmarks.courier", argv, parse_args(argv),
                      run_dataset, markdown)


if __name__ == "__main__":
  main()
