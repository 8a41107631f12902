"""GLUE-like embedding benchmark: GUIM K=4 and K=1 against baselines.

For each dataset and seed, trains every model on the leave-one-out train
sequences (`offline_eval.datasets`), freezes its user vectors (the history
including the validation item) and item vectors, and runs the dataset's probe
tasks (`offline_eval.probes`) with that seed. No probe reads what the models
trained on: the rating probe takes held-out pairs only, and the item tokens
exclude the related-item lists the relation probes test. Models, all trained here in the
same run:

- `random`: unit Gaussian vectors, one per user and item.
- `two_tower`: `models.retrieval.two_tower` (single vector, mean-pooled history), fed
  in-memory tensors under the pipeline's feature names
  (`offline_eval.retrieval_inputs`; the request-time context features are 0
  because the benchmark has no request time), trained by
  `models.training`.
- `guim_k1`, `guim_k2`, `guim_k4`, `guim_k8`: `models.retrieval.guim` with
  1, 2, 4 and 8 user vectors (the K sweep), trained with next-item InfoNCE
  plus `--masked_item_weight` times the masked-item loss (0: next-item
  alone, the ablation); with `--event_types` the history's behaviour types
  (the contract's `event`) are token types.
- `sasrec`: the pipeline's SASRec-class retriever (`models.retrieval.sasrec`,
  sampled softmax), one vector per user from the same queries.
- `most_popular` is scored on the ranking tasks only.
- `ease`, `item_knn`: the product's closed-form families
  (`offline_eval.item_item`), scored on the ranking tasks only: they have
  no user or item embedding for the probes (a user's row of item-item
  scores is not one). They fit the same train sequences, query by the same
  `--history_length` most recent items (incl. the validation item) and are
  ranked by the same scorer. Their hyperparameters are picked by the
  benchmark's next-item Recall@50 on each user's newest train item
  (`data.splits.latest_per_user_mask`, fitted on the rest of train), then
  refitted on all of train; the test items are never read. They are
  deterministic: one fit serves every seed (which still varies the sampled
  negatives).

The seed sets the model initialisation, the batch order, the probe splits and
the sampled negatives, so the std covers training and probing noise; with
`--train_once` every model is trained once (first seed) and the std covers
the probes and sampled negatives only.

With `--patience` the neural models train to convergence: after each epoch
(at most `--epochs`) the validation targets are ranked (next-item Recall@50
with the train history), training stops after `--patience` epochs without a
better one and the best epoch's weights are kept
(`models.training.fit_best_epoch`). Each fit's learning curve and its time
to quality (seconds to 99% of its best validation Recall@50) are written.

A dataset with item categories also reports next-item Recall@50 per
interest-diversity quartile of the users (distinct categories in their
train history; `diversity_quartiles`), the multi-interest paper's case
being the most diverse quartile (q4).

    python -m benchmarks.embedding_benchmark --datasets movielens-100k
    python -m benchmarks.embedding_benchmark \\
        --datasets taobao-userbehavior-sample --patience 2 --epochs 12 \\
        --models random two_tower sasrec guim_k1 guim_k2 guim_k4 guim_k8 \\
        item_knn
    python -m benchmarks.embedding_benchmark --dataset contract \\
        --dataset-dir DIR

Writes `benchmarks/results/embedding_benchmark_<datasets>.json` and prints
one markdown table per dataset. A contract directory is probed on the tasks
its data supports (`contract_tasks`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

from benchmarks import common
from data import features
from data import splits
from models.item_item import fitters as item_item_fitters
from models.retrieval import guim
from models.retrieval import sasrec
from models.retrieval import two_tower
from models import training
from offline_eval import behaviour_pairs
from offline_eval import datasets
from offline_eval import item_item
from offline_eval import probes
from offline_eval import protocols
from offline_eval import reporting
from offline_eval import retrieval_inputs

CLASSICAL = tuple(item_item_fitters.FITTERS)
GUIM_ROWS = ("guim_k1", "guim_k2", "guim_k4", "guim_k8")
MODELS = ("random", "two_tower", "sasrec") + GUIM_ROWS + CLASSICAL
# The rows every trained model is compared against.
BASELINES = ("most_popular",) + CLASSICAL
_EMBED_BATCH = 1024
# Time to quality: seconds until validation first reaches this share of the
# fit's best score.
QUALITY_SHARE = 0.99
NUM_QUARTILES = 4

# ReChorus' published multi-interest baseline on Grocery (full data, 99
# random negatives), for reference next to the measured rows.
COMIREC_PUBLISHED = {"rechorus/hr@5": 0.3753, "rechorus/ndcg@5": 0.2675}


def task_data(dataset: datasets.SequenceDataset) -> probes.TaskData:
  """The probe targets of a dataset: test items, attributes, labels.

  The interaction probe reads the held-out ratings
  (`SequenceDataset.held_out_ratings`): pairs no model trained on. Held-out
  events (Taobao's last days) give the purchase probe its pairs and the
  same-session relation (between items with a train positive, the ones
  with trained vectors).
  """
  interactions = None
  if dataset.ratings is not None:
    interactions = dataset.held_out_ratings()
  relations = dict(dataset.item_relations)
  if dataset.held_out_events is not None:
    relations[probes.SAME_SESSION_RELATION] = behaviour_pairs.session_pairs(
        dataset.held_out_events, items=dataset.catalogue(include_valid=True))
  return probes.TaskData(
      next_items=np.asarray(dataset.test_items),
      known_items=[np.append(sequence, dataset.valid_items[user])
                   for user, sequence in enumerate(dataset.train_sequences)],
      catalogue=dataset.catalogue(include_valid=True),
      interacted=[dataset.interacted(user) for user in range(dataset.num_users)],
      user_attributes=dataset.users,
      item_labels=dataset.item_categories,
      interactions=interactions,
      item_relations=relations,
      held_out_events=dataset.held_out_events)


def validation_task_data(dataset: datasets.SequenceDataset) -> probes.TaskData:
  """The validation targets, ranked among the train catalogue with the
  train history excluded: what early stopping reads."""
  return probes.TaskData(
      next_items=np.asarray(dataset.valid_items),
      known_items=list(dataset.train_sequences),
      catalogue=dataset.catalogue(include_valid=False))


def diversity_quartiles(dataset: datasets.SequenceDataset) -> np.ndarray:
  """`[U]` each user's quartile (1..4) of distinct categories in their train
  history (the first category of each item), 4 the most diverse."""
  distinct = np.array([len(np.unique(dataset.item_categories[sequence, 0]))
                       for sequence in dataset.train_sequences])
  edges = np.quantile(distinct, [0.25, 0.5, 0.75])
  return 1 + np.searchsorted(edges, distinct, side="left")


def quartile_metrics(data: probes.TaskData, quartiles: np.ndarray | None,
                     score_fn, num_items: int) -> dict[str, float]:
  """Next-item Recall@50 of the users of each diversity quartile."""
  if quartiles is None:
    return {}
  spec = probes.TaskSpec.from_dict(probes.NEXT_ITEM_TASK)
  return {
      f"{spec.name}/diversity_q{quartile}": probes.run_ranking_tasks(
          [spec], dataclasses.replace(data, next_items=np.where(
              quartiles == quartile, data.next_items, -1)),
          score_fn, num_items, seed=0)[spec.name]
      for quartile in range(1, NUM_QUARTILES + 1)}


def seconds_to_quality(best: training.BestEpoch,
                       share: float = QUALITY_SHARE) -> float:
  """Seconds until a validation score first reached `share` of the best."""
  reached = np.flatnonzero(np.asarray(best.scores) >= share * best.score)
  return float(best.seconds[reached[0]])


def contract_tasks(dataset: datasets.SequenceDataset) -> list[dict]:
  """The probe tasks a contract directory's data supports.

  Every dataset has the next-item and ReChorus ranking tasks; categories in
  the items table add the category probe and coherence, and complement or
  substitute lists the relation probes.
  """
  tasks = [probes.NEXT_ITEM_TASK]
  if dataset.item_categories.any():
    tasks += [{"name": "category_macro_f1", "kind": "item_class_f1"},
              {"name": "category_coherence@10", "kind": "neighbour_coherence",
               "k": 10}]
  tasks += [{"name": f"{relation}_auc", "kind": "relation_auc",
             "relation": relation}
            for relation, pairs in dataset.item_relations.items() if len(pairs)]
  return tasks + [probes.RECHORUS_TASK]


def train_and_embed(model_name: str, data: retrieval_inputs.RetrievalInputs,
                    user_queries: Mapping[str, np.ndarray], num_items: int,
                    seed: int, args: argparse.Namespace,
                    validate=None
                    ) -> tuple[probes.Embeddings, training.BestEpoch | None]:
  """Trains `model_name` with `seed`; returns its frozen embeddings and, when
  `validate` (`(query_tower, candidate_tower) -> score`) is given and
  `args.patience` set, the epoch early stopping kept."""
  tf.keras.utils.set_random_seed(seed)
  if model_name == "random":
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(len(next(iter(user_queries.values()))), 1,
                             args.dim))
    items = rng.normal(size=(num_items, args.dim))
    return probes.Embeddings(
        users=users / np.linalg.norm(users, axis=-1, keepdims=True),
        items=items / np.linalg.norm(items, axis=-1, keepdims=True)), None
  common = {"embedding_dim": args.dim, "tower_units": (2 * args.dim, args.dim),
            "epochs": args.epochs, "batch_size": args.batch_size,
            "num_uniform_negatives": args.uniform_negatives}
  if model_name == "two_tower":
    model = two_tower.build_two_tower(
        data.vocab, data.catalogue, data.sampling_probability,
        two_tower.TwoTowerConfig(**common))
  elif model_name == "sasrec":
    model = sasrec.build_sasrec(
        data.vocab, data.catalogue, data.sampling_probability,
        sasrec.SasRecConfig(num_blocks=2, num_heads=2,
                            full_catalogue_softmax=False,
                            use_request_context=False, **common))
  else:
    model = guim.build_guim(
        data.vocab, data.catalogue, data.sampling_probability,
        guim.GuimConfig(num_interests=int(model_name.rsplit("k", 1)[1]),
                        attention_power=args.attention_power,
                        training_scores=args.training_scores,
                        masked_item_weight=args.masked_item_weight,
                        masked_item_probability=args.masked_item_probability,
                        num_event_types=(data.num_event_types
                                         if args.event_types else 0),
                        **common))
  batches = training.shuffled_batches(data.examples, args.batch_size, seed)
  best = None
  if validate is not None and args.patience is not None:
    best = training.fit_best_epoch(
        model, batches, model.config.learning_rate, args.epochs,
        lambda epoch, loss: validate(model.query_tower,
                                     model.candidate_tower),
        patience=args.patience)
  else:
    training.fit(model, batches, model.config.learning_rate, args.epochs)
  users = training.predict_in_batches(model.query_tower, user_queries,
                                      _EMBED_BATCH)
  if users.ndim == 2:
    users = users[:, np.newaxis]
  items = training.predict_in_batches(model.candidate_tower, data.catalogue,
                                      _EMBED_BATCH)[:num_items]
  return probes.Embeddings(users=users, items=items), best


def validator(dataset: datasets.SequenceDataset,
              inputs: retrieval_inputs.RetrievalInputs, history_length: int):
  """`(query_tower, candidate_tower) -> validation next-item Recall@50`."""
  queries = retrieval_inputs.user_queries(dataset, history_length,
                                          include_valid=False)
  task = validation_task_data(dataset)
  spec = probes.TaskSpec.from_dict(probes.NEXT_ITEM_TASK)

  def validate(query_tower, candidate_tower) -> float:
    users = training.predict_in_batches(query_tower, queries, _EMBED_BATCH)
    items = training.predict_in_batches(candidate_tower, inputs.catalogue,
                                        _EMBED_BATCH)[:dataset.num_items]
    embeddings = probes.Embeddings(
        users=users[:, np.newaxis] if users.ndim == 2 else users, items=items)
    return probes.run_tasks([spec], task, embeddings, seed=0)[spec.name]

  return validate


def most_popular_metrics(dataset: datasets.SequenceDataset,
                         data: probes.TaskData,
                         specs: Sequence[probes.TaskSpec],
                         seed: int) -> dict[str, float]:
  """The ranking tasks scored by train popularity, with the same scorers."""
  popularity = protocols.popularity_scores(
      np.concatenate(dataset.train_sequences), dataset.num_items)
  return probes.run_ranking_tasks(
      specs, data, lambda users: np.tile(popularity, (len(users), 1)),
      dataset.num_items, seed)


def fit_classical(family: str, dataset: datasets.SequenceDataset,
                  history_length: int) -> tuple[item_item.ItemItemScorer, dict]:
  """Tunes `family` on validation carved from train, refits it on train.

  Returns:
    The scorer of every user by their test query (the `history_length`
    most recent items, the validation item included), and what was chosen
    with every setting's validation Recall@50.
  """
  users, histories, targets = dataset.next_item_examples(history_length)
  # Examples come oldest first per user: the position orders them in time.
  validation = splits.latest_per_user_mask(users, np.arange(len(users)))
  fit_items = _per_user(users[~validation], targets[~validation],
                        dataset.num_users)
  fit_histories = item_item.history_matrix(fit_items, dataset.num_items)
  validation_task = probes.TaskData(
      next_items=np.asarray(targets[validation]),
      known_items=[fit_items[user] for user in users[validation]],
      catalogue=protocols.items_with_positives(fit_items, dataset.num_items))
  validation_queries = item_item.history_matrix(list(histories[validation]),
                                                dataset.num_items)
  next_item = probes.TaskSpec.from_dict(probes.NEXT_ITEM_TASK)

  def validate(neighbours) -> float:
    scorer = item_item.ItemItemScorer(neighbours, validation_queries)
    return probes.run_ranking_tasks([next_item], validation_task,
                                    scorer.score_all, dataset.num_items,
                                    seed=0)[next_item.name]

  tuned = item_item.tune(family, fit_histories, validate)
  neighbours = item_item_fitters.FITTERS[family].fit(
      item_item.history_matrix(dataset.train_sequences, dataset.num_items),
      tuned.config)
  queries = item_item.history_matrix(
      list(dataset.padded_history(history_length, include_valid=True)),
      dataset.num_items)
  chosen = {"hparams": {name: getattr(tuned.config, name)
                        for name in tuned.validation[0]["hparams"]},
            "validation": tuned.validation,
            "validation_metric": next_item.name,
            "validation_users": int(validation.sum())}
  return item_item.ItemItemScorer(neighbours, queries), chosen


def _per_user(users: np.ndarray, items: np.ndarray,
              num_users: int) -> list[np.ndarray]:
  """`items` grouped by `users` (sorted, as the examples are)."""
  return np.split(items, np.cumsum(np.bincount(users, minlength=num_users))[:-1])


def run_dataset(name: str, args: argparse.Namespace) -> dict:
  """Every model and seed on one dataset; per-seed and aggregated metrics."""
  started = time.time()
  # The relation probes test the related-item lists: no model may read
  # tokens built from them.
  dataset = datasets.without_relation_tokens(
      common.load_sequences(name, args, args.source_root))
  data = task_data(dataset)
  tasks = probes.DATASET_TASKS.get(name) or contract_tasks(dataset)
  specs = [probes.TaskSpec.from_dict(spec) for spec in tasks]
  inputs = retrieval_inputs.RetrievalInputs.from_dataset(dataset,
                                                         args.history_length)
  # The history includes the validation item: the input for the test target.
  user_queries = retrieval_inputs.user_queries(dataset, args.history_length,
                                               include_valid=True)
  name = common.dataset_label(name, args)
  common.log(f"[{name}] {dataset.num_users} users, {dataset.num_items - 1} "
             f"items, {len(inputs.examples[features.ITEM_INDEX])} train "
             "examples")
  runs: dict[str, list[dict[str, float]]] = {}
  train_seconds: dict[str, list[float]] = {}
  classical: dict[str, dict] = {}
  quartiles = (diversity_quartiles(dataset)
               if dataset.item_categories.any() else None)
  popularity = protocols.popularity_scores(
      np.concatenate(dataset.train_sequences), dataset.num_items)
  for seed in args.seeds:
    runs.setdefault("most_popular", []).append({
        **most_popular_metrics(dataset, data, specs, seed),
        **quartile_metrics(data, quartiles, lambda users: np.tile(
            popularity, (len(users), 1)), dataset.num_items)})
  for family in [model for model in args.models if model in CLASSICAL]:
    model_started = time.time()
    scorer, classical[family] = fit_classical(family, dataset,
                                              args.history_length)
    train_seconds[family] = [time.time() - model_started]
    runs[family] = [{**probes.run_ranking_tasks(specs, data, scorer.score_all,
                                                dataset.num_items, seed),
                     **quartile_metrics(data, quartiles, scorer.score_all,
                                        dataset.num_items)}
                    for seed in args.seeds]
    print(f"[{name}] {family} {classical[family]['hparams']} tuned and "
          f"fitted in {train_seconds[family][0]:.0f}s: "
          + ", ".join(f"{metric} {value:.4f}" for metric, value
                      in runs[family][0].items()), flush=True)
  validate = validator(dataset, inputs, args.history_length)
  curves: dict[str, list[dict]] = {}
  for model_name in [model for model in args.models if model not in CLASSICAL]:
    trained = {}
    for seed in args.seeds:
      train_seed = args.seeds[0] if args.train_once else seed
      if train_seed not in trained:
        model_started = time.time()
        trained[train_seed], best = train_and_embed(
            model_name, inputs, user_queries, dataset.num_items, train_seed,
            args, validate)
        train_seconds.setdefault(model_name, []).append(
            time.time() - model_started)
        if best is not None:
          curves.setdefault(model_name, []).append({
              "seed": train_seed, "best_epoch": best.epoch,
              "validation_recall@50": best.scores, "seconds": best.seconds,
              "seconds_to_99pct_of_best": seconds_to_quality(best)})
      embeddings = trained[train_seed]
      poolings = ["mean", "concat"] if embeddings.users.shape[1] > 1 else ["mean"]
      for pooling in poolings:
        row = model_name if pooling == "mean" else f"{model_name}_concat"
        runs.setdefault(row, []).append({
            **probes.run_tasks(specs, data, embeddings, seed, pooling),
            **quartile_metrics(data, quartiles, embeddings.scores,
                               dataset.num_items)})
      print(f"[{name}] {model_name} trained with seed {train_seed} in "
            f"{train_seconds[model_name][-1]:.0f}s, probe seed {seed}: "
            + ", ".join(f"{metric} {value:.4f}" for metric, value
                        in runs[model_name][-1].items()), flush=True)
  return {
      "dataset": name,
      "tasks": tasks,
      "seeds": list(args.seeds),
      "metrics": {row: reporting.aggregate_seeds(values)
                  for row, values in runs.items()},
      "train_seeds": args.seeds[:1] if args.train_once else list(args.seeds),
      "train_and_embed_seconds": train_seconds,
      "learning_curves": curves,
      "sizes": {"users": dataset.num_users,
                "items": dataset.num_items - 1,
                "catalogue_items": int(data.catalogue.sum()),
                "train_examples": len(inputs.examples[features.ITEM_INDEX]),
                "diversity_quartile_users": (
                    np.bincount(quartiles, minlength=NUM_QUARTILES + 1)[
                        1:].tolist() if quartiles is not None else None)},
      "classical": classical,
      "wall_seconds": time.time() - started,
  }


def markdown(result: Mapping) -> str:
  """One row per model, one column per metric, mean ± std over seeds."""
  metrics = result["metrics"]
  # Most-popular has the ranking metrics only; every model row has them all.
  names = list(max(metrics.values(), key=len))
  rows = []
  for row, stats in metrics.items():
    rows.append([row] + [reporting.format_mean_std(stats[name]) if name in stats
                         else "–" for name in names])
  if result["dataset"] == "amazon-grocery":
    rows.append(["ComiRec (ReChorus, published, full data)"] + [
        f"{COMIREC_PUBLISHED[name]:.4f}" if name in COMIREC_PUBLISHED else "–"
        for name in names])
  table = reporting.markdown_table(["model"] + names, rows)
  classical = [row for row in CLASSICAL if row in metrics]
  if classical:
    table += (f"\n\n{', '.join(classical)}: no user or item embedding, so "
              "ranking tasks only (– on the probes).")
  baseline = metrics.get("two_tower")
  if baseline and "guim_k4" in metrics:
    ratios = ", ".join(
        f"{name} {metrics['guim_k4'][name]['mean'] / baseline[name]['mean']:.2f}×"
        for name in names if baseline[name]["mean"])
    table += f"\n\nGUIM K=4 / two-tower (means): {ratios}"
  table += "\n\n" + verdict(metrics)
  if len(result["train_seeds"]) == 1:
    table += (" (one training seed: the std is over probe seeds only, so a "
              "margin is not shown to exceed training noise)")
  return table


def verdict(metrics: Mapping[str, Mapping[str, dict]],
            metric: str = probes.NEXT_ITEM_TASK["name"]) -> str:
  """Names the strongest baseline by mean `metric` and the trained models
  whose mean beats it by more than their std over seeds."""
  strongest = max((row for row in BASELINES if row in metrics),
                  key=lambda row: metrics[row][metric]["mean"])
  bar = metrics[strongest][metric]["mean"]
  winners = [row for row, stats in metrics.items()
             if row not in BASELINES and row != "random"
             and stats[metric]["mean"] - stats[metric]["std"] > bar]
  return (f"Strongest baseline by {metric}: {strongest} ({bar:.4f}); "
          "models above it by more than their std: "
          + (", ".join(winners) or "none"))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  common.add_dataset_arguments(parser, list(probes.DATASET_TASKS),
                               list(probes.DATASET_TASKS), multiple=True)
  parser.add_argument("--models", nargs="+", default=list(MODELS),
                      choices=list(MODELS))
  parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
  parser.add_argument("--train_once", action="store_true",
                      help="train each model with the first seed only; the "
                      "seeds then vary the probes and sampled negatives only")
  parser.add_argument("--epochs", type=int, default=5,
                      help="epochs; with --patience the most epochs")
  parser.add_argument("--patience", type=int, default=None,
                      help="early stopping on validation Recall@50 after "
                      "this many epochs without a better one (default: "
                      "train --epochs)")
  parser.add_argument("--batch_size", type=int, default=512)
  parser.add_argument("--history_length", type=int, default=20,
                      help="most recent items per history, for every model "
                      f"(the pipeline keeps {features.HISTORY_LENGTH})")
  parser.add_argument("--dim", type=int, default=64,
                      help="embedding size of every model")
  parser.add_argument("--uniform_negatives", type=int, default=256,
                      help="uniform negatives per batch, for every model")
  parser.add_argument("--attention_power", type=float, default=20.0,
                      help="GUIM's label-aware attention power (inf = hard)")
  parser.add_argument("--training_scores", default="per_candidate",
                      choices=guim.TRAINING_SCORES,
                      help="GUIM's training scores, see models/retrieval/guim.py")
  defaults = guim.GuimConfig()
  parser.add_argument("--masked_item_weight", type=float,
                      default=defaults.masked_item_weight,
                      help="GUIM's masked-item loss weight (0 = next-item only)")
  parser.add_argument("--masked_item_probability", type=float,
                      default=defaults.masked_item_probability,
                      help="share of history positions GUIM's masked-item "
                      "objective masks")
  parser.add_argument("--event_types", action="store_true",
                      help="GUIM adds a behaviour-type embedding to each "
                      "history position (the contract's event column)")
  parser.add_argument("--source_root", default=None,
                      help="raw data root; default: the shared data")
  parser.add_argument("--output", default="",
                      help="JSON path; default: results/embedding_benchmark_"
                      "<datasets>.json")
  return parser.parse_args(argv)


def main(argv: Sequence[str]) -> None:
  args = parse_args(argv)
  labels = [common.dataset_label(name, args) for name in args.datasets]
  output = args.output or (
      common.RESULTS_DIR / f"embedding_benchmark_{'+'.join(labels)}.json")
  started = time.time()
  results = [run_dataset(name, args) for name in args.datasets]
  for result in results:
    print(f"\n### {result['dataset']} ({len(result['seeds'])} seeds, "
          f"{result['wall_seconds']:.0f} s)\n")
    print(markdown(result))
  common.write_results(output, {
      "command": common.command("benchmarks.embedding_benchmark", argv),
      "arguments": vars(args),
      "machine": common.machine(),
      "results": results,
      "wall_seconds": time.time() - started,
  })


if __name__ == "__main__":
  main(sys.argv[1:])
