"""Sequential recommenders on the ReChorus leave-one-out protocol.

Compares, on one split and one scorer (`offline_eval`):
- MostPop (train-split interaction counts);
- EASE^R and item-kNN, the product's closed-form families
  (`models.item_item.ease`, `models.item_item.item_knn` via `offline_eval.item_item`): a user's
  history is every item of their train sequence (plus the validation item
  for the test targets), scored by the sum of its rows of B;
- the SASRec-class retriever of `models/retrieval/sasrec.py` (the module the pipeline
  trains), fed with in-memory tensors;
- SEMINAR (`models/seminar/model.py`): PSU pretraining, then the TWIN-style
  target-attention model restored from it; its ablations (no pretraining,
  and without each PSU objective);
- a TWIN-style baseline: the same target-attention model on item ids only,
  without queries, text views or pretraining.

Each model picks its epoch (EASE^R its λ, item-kNN its neighbours and
shrinkage, from their product configs' grids) on the validation targets
(sampled NDCG@5) and is reported on the test targets without refitting:
every model fits on the train sequences only, and reads the validation item
as its newest history item when scored on the test targets. Test metrics
are under the 1 + 99 sampled protocol (HR@5, NDCG@5, HR@10, NDCG@10, MRR)
and under full ranking over the catalogue (HR@10, NDCG@10, MRR; the user's
train items and the validation target are excluded). The table also gives
each row's HR@5 against the strongest baseline of the run (the best sampled
HR@5 of MostPop, EASE^R and item-kNN). Queries of the SEMINAR models are derived from item text (see
`derived_queries.derive_queries`), because neither dataset has search logs.

The SASRec-class model trains on `offline_eval.retrieval_inputs`' examples;
every model trains through `models.training` (length-bucketed batches, the
epoch kept by validation).

  python -m benchmarks.sequential --dataset amazon-grocery --seeds 0 1 2
  python -m benchmarks.sequential --dataset contract --dataset-dir DIR
"""

from __future__ import annotations

import argparse
import functools
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from benchmarks import common
from benchmarks import seminar_data
from data import features
from models.item_item import fitters as item_item_fitters
from models.retrieval import sasrec
from models.seminar import model as seminar
from models import training
from offline_eval import datasets
from offline_eval import item_item
from offline_eval import protocols
from offline_eval import reporting
from offline_eval import retrieval_inputs

SAMPLED_KS = (5, 10)
FULL_KS = (10,)
# What every model's epoch or grid setting is picked by, on validation.
SELECTION_METRIC = "sampled_ndcg@5"
# The rows a model must beat: no training beyond counting or a closed form.
BASELINES = ("mostpop", "ease", "item_knn")
# ReChorus' published numbers on Grocery (full data, 1 + 99 sampled).
RECHORUS_SASREC = {"hr@5": 0.3917, "ndcg@5": 0.2942}
RECHORUS_MOSTPOP = {"hr@5": 0.2065, "ndcg@5": 0.1301}

# `score_items(split, items [U, C]) -> [U, C]` for every user, and
# `score_all(split, users [n]) -> [n, num_items]`.
ItemScorer = Callable[[str, np.ndarray], np.ndarray]


class Protocol:
  """The validation/test targets, sampled negatives and full-ranking users."""

  def __init__(self, dataset: datasets.SequenceDataset, full_ranking_users: int,
               seed: int = 0, num_negatives: int = 99):
    self.dataset = dataset
    interacted = [dataset.interacted(u) for u in range(dataset.num_users)]
    self.negatives = protocols.sample_negatives(
        dataset.num_items, interacted, num_negatives, seed=seed, low=1)
    rng = np.random.default_rng(seed)
    count = min(full_ranking_users, dataset.num_users)
    self.full_users = np.sort(rng.choice(dataset.num_users, count,
                                         replace=False))
    self.targets = {"valid": dataset.valid_items, "test": dataset.test_items}

  def evaluate(self, split: str, score_items: ItemScorer,
               score_all: Callable[[str, np.ndarray], np.ndarray] | None
               ) -> dict[str, float]:
    """Sampled metrics on every user; full ranking (test only) on a subset."""
    targets = self.targets[split]
    items = np.concatenate([targets[:, np.newaxis], self.negatives], axis=1)
    scores = score_items(split, items)
    metrics = {f"sampled_{name}": value for name, value in
               protocols.sampled_ranking(scores[:, 0], scores[:, 1:],
                                         SAMPLED_KS).items()}
    if score_all is not None:
      exclude = [self.dataset.train_sequences[u] if split == "valid" else
                 np.append(self.dataset.train_sequences[u],
                           self.dataset.valid_items[u])
                 for u in self.full_users]
      full = protocols.full_ranking(
          lambda users: score_all(split, users), self.full_users,
          [targets[u:u + 1] for u in self.full_users], exclude, FULL_KS,
          chunk_size=256,
          catalogue=self.dataset.catalogue(include_valid=split != "valid"))
      metrics.update({f"full_{name}": value for name, value in full.items()
                      if not name.startswith("recall")})
    return metrics


def run_mostpop(dataset, protocol: Protocol, args, seed: int) -> dict:
  del args, seed
  popularity = protocols.popularity_scores(
      np.concatenate(dataset.train_sequences), dataset.num_items)
  return protocol.evaluate(
      "test", lambda split, items: popularity[items],
      lambda split, users: np.tile(popularity, [len(users), 1]))


def run_item_item(family: str, dataset, protocol: Protocol, args,
                  seed: int) -> dict:
  """EASE^R or item-kNN, its grid setting picked on the validation targets.

  Fits on the train sequences; the validation targets are scored from the
  train sequence, the test targets from it plus the validation item.
  """
  del args, seed
  train = list(dataset.train_sequences)
  histories = {
      "valid": item_item.history_matrix(train, dataset.num_items),
      "test": item_item.history_matrix(
          [np.append(sequence, valid) for sequence, valid in
           zip(train, dataset.valid_items)], dataset.num_items)}

  def evaluate(split, neighbours, full_ranking):
    scorer = item_item.ItemItemScorer(neighbours, histories[split])
    return protocol.evaluate(
        split, lambda _, items: scorer.score_items(items),
        (lambda _, users: scorer.score_all(users)) if full_ranking else None)

  def validate(neighbours):
    return evaluate("valid", neighbours, False)[SELECTION_METRIC]

  tuned = item_item.tune(family, histories["valid"], validate)
  for row in tuned.validation:
    common.log(f"  {family} {row['hparams']}: valid sampled NDCG@5 "
               f"{row['validation']:.4f} (fit {row['fit_s']:.1f} s)")
  return {**evaluate("test", tuned.neighbours, True),
          "tuning": tuned.validation}


def fit_best_on_validation(model: tf.keras.Model, train: tf.data.Dataset,
                           learning_rate: float, epochs: int,
                           protocol: Protocol, score_items: ItemScorer,
                           score_all, label: str) -> dict[str, float]:
  """Trains epoch by epoch and scores the test targets with the best epoch.

  The best epoch is the one with the highest sampled NDCG@5 on the
  validation targets; its weights are restored before the test run.
  """
  def validate(epoch: int, loss: float) -> float:
    valid = protocol.evaluate("valid", score_items, None)
    common.log(f"  {label} epoch {epoch}: loss {loss:.3f}, valid sampled "
               f"NDCG@5 {valid[SELECTION_METRIC]:.4f} HR@5 "
               f"{valid['sampled_hr@5']:.4f}")
    return valid[SELECTION_METRIC]

  best = training.fit_best_epoch(model, train, learning_rate, epochs, validate)
  return {**protocol.evaluate("test", score_items, score_all),
          "epoch": best.epoch}


def run_sasrec(dataset, protocol: Protocol, args, seed: int) -> dict:
  """Trains the pipeline's SASRec-class model, picks the epoch on valid."""
  tf.keras.utils.set_random_seed(seed)
  config = sasrec.SasRecConfig(
      embedding_dim=args.sasrec_dim, tower_units=(args.sasrec_dim,),
      num_blocks=args.sasrec_blocks, num_heads=2,
      dropout=args.sasrec_dropout, temperature=args.sasrec_temperature,
      learning_rate=args.sasrec_learning_rate,
      batch_size=args.sasrec_batch_size,
      num_uniform_negatives=args.sasrec_uniform_negatives,
      use_logq_correction=bool(args.sasrec_logq),
      full_catalogue_softmax=bool(args.sasrec_full_catalogue),
      history_item_features=bool(args.sasrec_history_features),
      item_bias=bool(args.sasrec_item_bias),
      use_request_context=False)
  inputs = retrieval_inputs.RetrievalInputs.from_dataset(dataset,
                                                         args.history_length)
  model = sasrec.build_sasrec(inputs.vocab, inputs.catalogue,
                              inputs.sampling_probability, config)
  train = training.length_bucketed_batches(
      inputs.examples, [features.HISTORY_ITEM_INDICES], config.batch_size,
      seed)
  split_queries = {
      split: retrieval_inputs.user_queries(dataset, args.history_length,
                                           include_valid=split == "test")
      for split in ("valid", "test")}

  def embeddings(split):
    queries = training.predict_in_batches(model.query_tower,
                                          split_queries[split], 2048)
    items = training.predict_in_batches(model.candidate_tower,
                                        inputs.catalogue,
                                        4096)[:dataset.num_items]
    return queries, items

  cache = {}

  def score_items(split, items):
    cache[split] = embeddings(split)
    queries, item_vectors = cache[split]
    return np.einsum("ud,ucd->uc", queries, item_vectors[items])

  def score_all(split, users):
    queries, item_vectors = cache[split]
    return queries[users] @ item_vectors.T

  return fit_best_on_validation(model, train, config.learning_rate,
                                args.sasrec_epochs, protocol, score_items,
                                score_all, f"sasrec seed {seed}")


SEMINAR_VARIANTS: dict[str, tuple[dict, bool]] = {
    # name: (SeminarConfig overrides, pretrain with the PSU)
    "seminar": ({}, True),
    "seminar_no_pretraining": ({}, False),
    "seminar_no_next_pair": ({"next_pair_weight": 0.0}, True),
    "seminar_no_alignment": ({"alignment_weight": 0.0}, True),
    "seminar_no_relevance": ({"relevance_weight": 0.0}, True),
    "twin": ({"use_queries": False, "use_text": False}, False),
}
_SEMINAR_DATA: dict[tuple, seminar_data.SeminarData] = {}


def run_seminar_variant(variant: str, dataset, protocol: Protocol, args,
                        seed: int) -> dict:
  """PSU pretraining (if the variant has it), then the retriever."""
  key = (dataset.name, args.history_length, args.query_keywords)
  if key not in _SEMINAR_DATA:
    _SEMINAR_DATA[key] = seminar_data.SeminarData(dataset, args.history_length,
                                     args.query_keywords)
  data = _SEMINAR_DATA[key]
  overrides, pretrain = SEMINAR_VARIANTS[variant]
  config = seminar.SeminarConfig(
      top_k=args.top_k, num_negatives=args.seminar_negatives,
      learning_rate=args.seminar_learning_rate, **overrides)
  tf.keras.utils.set_random_seed(seed)
  pretrainer, retriever = seminar_data.build_seminar_models(
      dataset, config, bool(args.seminar_popularity_prior))
  if pretrain:
    psu = training.fit(pretrainer, training.length_bucketed_batches(
        data.windows, seminar_data.WINDOW_SEQUENCES, args.psu_batch_size, seed),
                       config.learning_rate, args.psu_epochs)
    common.log(f"  {variant} seed {seed} PSU losses: " + ", ".join(
        f"{name} {values[-1]:.3f}" for name, values in psu.items()))
    retriever.restore_pretrained(pretrainer)
  score_items, score_all = seminar_data.seminar_scorers(retriever, data,
                                           dataset.num_items)
  train = training.length_bucketed_batches(data.windows, seminar_data.WINDOW_SEQUENCES,
                                           args.seminar_batch_size, seed)
  return fit_best_on_validation(retriever, train, config.learning_rate,
                                args.seminar_epochs, protocol, score_items,
                                score_all, f"{variant} seed {seed}")


MODELS: dict[str, Callable] = {
    "mostpop": run_mostpop,
    **{family: functools.partial(run_item_item, family)
       for family in item_item_fitters.FITTERS},
    "sasrec": run_sasrec,
    **{variant: functools.partial(run_seminar_variant, variant)
       for variant in SEMINAR_VARIANTS},
}


def _format(stats: Mapping[str, dict], name: str) -> str:
  return reporting.format_mean_std(stats[name]) if name in stats else "-"


COLUMNS = ("sampled_hr@5", "sampled_ndcg@5", "sampled_hr@10",
           "sampled_ndcg@10", "sampled_mrr", "full_hr@10", "full_ndcg@10",
           "full_mrr")


def strongest_baseline(stats: Mapping[str, dict]) -> str | None:
  """The baseline row with the best mean sampled HR@5, None without any."""
  present = [name for name in BASELINES if name in stats]
  if not present:
    return None
  return max(present, key=lambda name: stats[name]["sampled_hr@5"]["mean"])


def results_table(stats: Mapping[str, dict]) -> str:
  """Mean ± std per model, with HR@5 over MostPop and over the strongest
  baseline."""
  strongest = strongest_baseline(stats)

  def ratio(name: str, baseline: str | None) -> str:
    if baseline not in stats:
      return "-"
    return "{:.2f}x".format(stats[name]["sampled_hr@5"]["mean"] /
                            stats[baseline]["sampled_hr@5"]["mean"])

  rows = [[name, len(model_stats["sampled_hr@5"]["values"])] +
          [_format(model_stats, column) for column in COLUMNS] +
          [ratio(name, "mostpop"), ratio(name, strongest),
           f"{model_stats['seconds']['mean']:.0f}"]
          for name, model_stats in stats.items()]
  return reporting.markdown_table(
      ["model", "seeds", *COLUMNS, "HR@5 vs MostPop",
       f"HR@5 vs {strongest or 'strongest baseline'}", "s/seed"], rows)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  common.add_dataset_arguments(parser, datasets.DATASETS, "amazon-grocery")
  parser.add_argument("--models", nargs="+",
                      default=["mostpop", "ease", "item_knn", "sasrec",
                               "twin", "seminar"],
                      choices=list(MODELS))
  parser.add_argument("--seeds", nargs="+", type=int, default=[0])
  parser.add_argument("--full-ranking-users", type=int, default=2000,
                      help="users (random, fixed) scored against every item")
  parser.add_argument("--history-length", type=int, default=20)
  parser.add_argument("--sasrec-epochs", type=int, default=4)
  parser.add_argument("--sasrec-dim", type=int, default=64,
                      help="embedding and tower width")
  parser.add_argument("--sasrec-blocks", type=int, default=2)
  parser.add_argument("--sasrec-batch-size", type=int, default=512)
  parser.add_argument("--sasrec-full-catalogue", type=int, default=0,
                      help="1: softmax over every item instead of in-batch "
                      "+ uniform negatives")
  parser.add_argument("--sasrec-history-features", type=int, default=0,
                      help="1: history items by id + text + categories")
  parser.add_argument("--sasrec-item-bias", type=int, default=0,
                      help="1: a learned per-item bias in every score")
  parser.add_argument("--sasrec-dropout", type=float, default=0.2)
  parser.add_argument("--sasrec-temperature", type=float, default=0.05)
  parser.add_argument("--sasrec-learning-rate", type=float, default=0.002)
  parser.add_argument("--sasrec-uniform-negatives", type=int, default=256)
  parser.add_argument("--sasrec-logq", type=int, default=1,
                      help="1: subtract log sampling probability")
  parser.add_argument("--query-keywords", type=int, default=3,
                      help="keywords per derived query")
  parser.add_argument("--top-k", type=int, default=20,
                      help="history items each SEMINAR/TWIN target attends to")
  parser.add_argument("--psu-epochs", type=int, default=2)
  parser.add_argument("--psu-batch-size", type=int, default=64)
  parser.add_argument("--seminar-epochs", type=int, default=4)
  parser.add_argument("--seminar-batch-size", type=int, default=64)
  parser.add_argument("--seminar-negatives", type=int, default=128)
  parser.add_argument("--seminar-learning-rate", type=float, default=0.003)
  parser.add_argument("--seminar-popularity-prior", type=int, default=1,
                      help="1: the SEMINAR/TWIN retrievers' item bias starts "
                      "at log train frequency; 0: at zero (runs before it)")
  parser.add_argument("--output", default=None,
                      help="JSON path; default "
                      "results/sequential_<dataset>.json")
  return parser


def main(argv: Sequence[str] | None = None) -> None:
  args = _parser().parse_args(argv)

  started = time.time()
  label = common.dataset_label(args.dataset, args)
  common.log(f"loading {label}")
  dataset = common.load_sequences(args.dataset, args)
  common.log(f"{dataset.num_users} users, {dataset.num_items - 1} items, "
      f"{sum(len(s) for s in dataset.train_sequences)} train interactions")
  protocol = Protocol(dataset, args.full_ranking_users)
  runs: dict[str, list[dict]] = {}
  tunings: dict[str, list[dict]] = {}
  for name in args.models:
    # The baselines have no seed: counting and closed forms.
    for seed in args.seeds if name not in BASELINES else args.seeds[:1]:
      model_started = time.time()
      metrics = MODELS[name](dataset, protocol, args, seed)
      metrics["seconds"] = time.time() - model_started
      tuning = metrics.pop("tuning", None)
      if tuning is not None:
        tunings[name] = tuning
      common.log(f"{name} seed {seed}: " + ", ".join(
          f"{k} {v:.4f}" for k, v in metrics.items()))
      runs.setdefault(name, []).append(metrics)
  stats = {name: reporting.aggregate_seeds(values)
           for name, values in runs.items()}
  table = results_table(stats)
  print(table)
  payload = {
      "dataset": label, "args": vars(args), "runs": runs,
      "command": common.command("benchmarks.sequential", argv),
      "machine": common.machine(),
      "stats": stats, "table": table, "tuning": tunings,
      "full_ranking_users": len(protocol.full_users),
      "seconds": time.time() - started,
  }
  if args.dataset == "amazon-grocery":
    payload["rechorus_published"] = {"sasrec": RECHORUS_SASREC,
                                     "mostpop": RECHORUS_MOSTPOP}
  common.write_results(
      args.output or common.RESULTS_DIR / f"sequential_{label}.json", payload)


if __name__ == "__main__":
  main()
