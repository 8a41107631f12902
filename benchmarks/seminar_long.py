"""SEMINAR against its paper's baselines on long histories, as CTR.

The task (`seminar_long_data`), on the Taobao UserBehavior sample (ids and
categories) or on H&M (`--dataset hm-fashion`: ids, categories, title words
of the articles with metadata and, with `--image-vectors`, a frozen vector
of every article's photo): events split by day (test the last
`--test-days`, validation the `--valid-days` before, train targets the
`--train-days` before them, earlier days history only), every event a
positive with up to `--history-length` earlier events as its history,
`--negatives` negatives per positive drawn by popularity from the same
day's items. No search queries exist: every history item's pseudo-query is
its category (Taobao: an id; H&M: the product group, type and department
names). Every model reads the same item features (`LongHistoryCtr.catalogue`
for the baselines, SEMINAR's id, text and image views).

Every model scores (history, candidate) pairs and trains on the same
examples with sigmoid cross-entropy (`models.seminar.ctr_ranker`), epoch by
epoch until `--patience` epochs without a better validation AUC, keeping
the best epoch (`training.fit_best_epoch`):

- `din`: DIN's attention over every history item (`models.seminar.din`);
- `sim`: SIM's hard search by category, then target attention
  (`models.seminar.sim`);
- `sasrec`: SASRec-class as a scorer: causal self-attention over the
  `--sasrec-length` most recent history items, the last state dotted with
  the candidate (`models.seminar.sasrec_ranker`);
- `twin`: the TWIN-style target attention with top-K selection, the
  `SeminarRetriever` without queries or pre-training, on id + category items;
- `seminar_no_psu`: SEMINAR's retriever (queries on) without pre-training;
- `seminar`: the same after PSU pre-training (`--psu-epochs` epochs, all
  three objectives) on the train days' windows;
- `seminar_no_next_pair`, `seminar_no_alignment`, `seminar_no_relevance`:
  the PSU without one objective.

Reported on the test day: AUC, GAUC (per-user AUC weighted by the user's
examples, users with a single class skipped, as in DIN) and log loss, mean ±
std over the seeds, and whether each SEMINAR row beats the strongest
baseline (best mean AUC of DIN, SIM, SASRec-class and TWIN) on AUC and GAUC in every seed.
For `seminar`, the PQ attention (`quantize_item_keys`) against exact
selection: test AUC on the examples whose history is longer than the
shortlist (`rerank_factor * top_k`; shorter ones select exactly by
construction) and on those of `--pq-min-history` or more items, and the scorer's time per request (`score_selected`: selection
and attention over one history, its `1 + negatives` candidates) on those
longest histories.

  python -m benchmarks.seminar_long --seeds 0 1 2
  python -m benchmarks.seminar_long --dataset hm-fashion --test-days 28 \
      --valid-days 28 --image-vectors IMAGE_VECTORS.npz
  python -m benchmarks.seminar_long --merge A.json B.json --output C.json
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from benchmarks import common
from benchmarks import seminar_long_data
from data import importers
from data import item_vectors
from models import training
from models.seminar import ctr_ranker
from models.seminar import din
from models.seminar import model as seminar
from models.seminar import psu as seminar_psu
from models.seminar import retriever_ranker
from models.seminar import sasrec_ranker
from models.seminar import sim
from offline_eval import protocols
from offline_eval import reporting

BASELINES = ("din", "sim", "sasrec", "twin")
# name: (SeminarConfig overrides, pre-train with the PSU)
SEMINAR_VARIANTS: dict[str, tuple[dict, bool]] = {
    "twin": ({"use_queries": False}, False),
    "seminar_no_psu": ({}, False),
    "seminar": ({}, True),
    "seminar_no_next_pair": ({"next_pair_weight": 0.0}, True),
    "seminar_no_alignment": ({"alignment_weight": 0.0}, True),
    "seminar_no_relevance": ({"relevance_weight": 0.0}, True),
}
MODELS = ("din", "sim", "sasrec", *SEMINAR_VARIANTS)
DEFAULT_MODELS = (*BASELINES, "seminar_no_psu", "seminar")
METRICS = ("auc", "gauc", "logloss")
QUERIES = "pseudo-queries: each history item's category (no search log)"
TAOBAO = "taobao-userbehavior-sample"
HM = "hm-fashion"
# Dataset -> the label of its default results file.
RESULT_LABELS = {TAOBAO: "taobao", HM: "hm"}
_FEATURES = (ctr_ranker.HISTORY, ctr_ranker.KEYWORDS, ctr_ranker.CANDIDATE)
_SIGNATURE = {ctr_ranker.HISTORY: tf.TensorSpec([None, None], tf.int32),
              ctr_ranker.KEYWORDS: tf.TensorSpec([None, None, None],
                                                 tf.int32),
              ctr_ranker.CANDIDATE: tf.TensorSpec([None], tf.int32)}


def history_lengths(examples: Mapping[str, np.ndarray]) -> np.ndarray:
  return np.sum(examples[ctr_ranker.HISTORY] != 0, axis=1)


def predict(logits: Callable[[dict], tf.Tensor],
            examples: Mapping[str, np.ndarray],
            positions_per_batch: int) -> np.ndarray:
  """`logits` over `examples` in batches of similar history length, each
  trimmed to its longest history; in example order."""
  lengths = history_lengths(examples)
  order = np.argsort(lengths, kind="stable")
  scores = np.empty(len(order), np.float32)
  start = 0
  while start < len(order):
    width = max(1, int(lengths[order[min(len(order) - 1, start)]]))
    stop = start + max(1, positions_per_batch // width)
    rows = order[start:stop]
    width = max(1, int(lengths[rows].max()))
    batch = {name: examples[name][rows] for name in _FEATURES}
    for name in ctr_ranker.SEQUENCES:
      batch[name] = batch[name][:, :width]
    scores[rows] = logits(batch).numpy()
    start = stop
  return scores


def ctr_metrics(examples: Mapping[str, np.ndarray],
                logits: np.ndarray) -> dict[str, float]:
  """AUC, GAUC and log loss of `logits` against the examples' labels."""
  labels = examples[ctr_ranker.LABEL]
  signs = 2.0 * labels - 1.0
  return {"auc": protocols.auc(labels, logits),
          "gauc": protocols.gauc(examples["user"], labels, logits),
          "logloss": float(np.mean(np.logaddexp(0.0, -signs * logits)))}


def build_ranker(name: str, task: seminar_long_data.LongHistoryCtr, args,
                 image_vectors: np.ndarray | None = None
                 ) -> tuple[ctr_ranker.CtrRanker, tf.keras.Model | None]:
  """The ranker, and the PSU to pre-train it with (None: no pre-training).

  `image_vectors` (`[num_items, I]`), if given, is every model's image
  feature."""
  catalogue = task.catalogue(image_vectors)
  if name == "din":
    return din.DinRanker(catalogue, args.embedding_dim), None
  if name == "sim":
    return sim.SimRanker(catalogue, args.embedding_dim), None
  if name == "sasrec":
    return sasrec_ranker.SasRecRanker(
        catalogue, args.embedding_dim, max_length=args.sasrec_length), None
  overrides, pretrain = SEMINAR_VARIANTS[name]
  config = seminar.SeminarConfig(
      embedding_dim=args.embedding_dim, top_k=args.top_k,
      learning_rate=args.learning_rate, pq_subspaces=args.pq_subspaces,
      **overrides)
  pretrainer, retriever = seminar_psu.build_seminar(
      task.item_tokens, task.num_tokens, config, image_vectors)
  return (retriever_ranker.RetrieverRanker(retriever),
          pretrainer if pretrain else None)


def pq_comparison(retriever: seminar.SeminarRetriever,
                  test: Mapping[str, np.ndarray], args,
                  seed: int) -> dict[str, float]:
  """Exact against PQ selection: test AUC on long histories, and the
  exported scorer's time per request on the longest ones."""
  retriever.quantize_item_keys(seed)
  result = {}

  def scorer(mode):
    return tf.function(
        lambda batch: retriever.score(
            batch[ctr_ranker.HISTORY], batch[ctr_ranker.KEYWORDS],
            batch[ctr_ranker.CANDIDATE][:, tf.newaxis], mode)[:, 0],
        input_signature=[_SIGNATURE])

  for factor in args.pq_rerank_factors:
    retriever.attention.rerank_factor = factor
    longer = {name: values[history_lengths(test) > factor * args.top_k]
              for name, values in test.items()}
    lengths = history_lengths(longer)
    scores = {mode: predict(scorer(mode), longer, args.positions_per_batch)
              for mode in (seminar.ScoringMode.EXACT, seminar.ScoringMode.PQ)}
    for label, subset in ((f"history_gt_{factor * args.top_k}",
                           np.ones(len(lengths), bool)),
                          (f"history_ge_{args.pq_min_history}",
                           lengths >= args.pq_min_history)):
      result[f"r{factor}_{label}_examples"] = float(subset.sum())
      # A positive and its negatives share a history: a subset by history
      # length holds both labels or nothing.
      if subset.any():
        for mode, values in scores.items():
          result[f"r{factor}_{label}_auc_{mode.value}"] = protocols.auc(
              longer[ctr_ranker.LABEL][subset], values[subset])
    result.update(request_seconds(retriever, longer, lengths, args, factor))
  retriever.attention.rerank_factor = args.pq_rerank_factors[-1]
  return result


def request_seconds(retriever: seminar.SeminarRetriever,
                    test: Mapping[str, np.ndarray], lengths: np.ndarray,
                    args, factor: int) -> dict[str, float]:
  """Seconds of `score_selected` per request (one history, its positive and
  negatives) on the histories of `--pq-min-history` or more.

  The modes take turns on each request (their order rotating from one
  request to the next), so that what else runs on the machine slows them
  alike, and each request's time in a mode is the least of
  `--timing-repeats` tries. Reports each mode's median over requests, and
  the median over requests of each quantized mode's time over exact's on
  the same request: the ratio the goal is about.
  """
  group = 1 + args.negatives
  # Examples are laid out positive, then its negatives, sharing a history.
  starts = np.flatnonzero((test[ctr_ranker.LABEL] == 1) &
                          (lengths >= args.pq_min_history))
  modes = list(seminar.ScoringMode)
  scorers = {mode: tf.function(
      lambda items, keywords, candidates, mode=mode:
      retriever.score_selected(items, keywords, candidates, mode),
      input_signature=[tf.TensorSpec([1, None], tf.int32),
                       tf.TensorSpec([1, None, None], tf.int32),
                       tf.TensorSpec([1, None], tf.int32)]) for mode in modes}
  best = {mode: np.full(len(starts), np.inf) for mode in modes}
  # The first pass traces and compiles.
  for repeat in range(1 + args.timing_repeats):
    for index, start in enumerate(starts):
      width = int(lengths[start])
      request = (test[ctr_ranker.HISTORY][start:start + 1, :width],
                 test[ctr_ranker.KEYWORDS][start:start + 1, :width],
                 test[ctr_ranker.CANDIDATE][np.newaxis, start:start + group])
      shift = index % len(modes)
      for mode in modes[shift:] + modes[:shift]:
        began = time.perf_counter()
        scorers[mode](*request).numpy()
        if repeat:
          best[mode][index] = min(best[mode][index],
                                  time.perf_counter() - began)
  result = {"requests_timed": float(len(starts))}
  for mode in modes:
    result[f"r{factor}_request_seconds_{mode.value}"] = (
        float(np.median(best[mode])) if len(starts) else float("nan"))
    if mode.quantized:
      result[f"r{factor}_request_{mode.value}_over_exact"] = (
          float(np.median(best[mode] / best[seminar.ScoringMode.EXACT]))
          if len(starts) else float("nan"))
  return result


def run(name: str, task: seminar_long_data.LongHistoryCtr, args,
        seed: int, image_vectors: np.ndarray | None = None
        ) -> dict[str, float]:
  """Trains one model with one seed; its test metrics and costs."""
  started = time.time()
  tf.keras.utils.set_random_seed(seed)
  ranker, pretrainer = build_ranker(name, task, args, image_vectors)
  if pretrainer is not None:
    psu = training.fit(pretrainer, training.length_bucketed_batches(
        task.windows, ctr_ranker.SEQUENCES, args.psu_batch_size, seed),
                       args.learning_rate, args.psu_epochs)
    common.log(f"  {name} seed {seed} PSU losses: " + ", ".join(
        f"{loss} {values[-1]:.3f}" for loss, values in psu.items()))
    ranker.retriever.restore_pretrained(pretrainer)
  logits = tf.function(lambda batch: ranker.logits(batch),
                       input_signature=[_SIGNATURE])
  valid, test = task.splits["valid"], task.splits["test"]

  def validate(epoch: int, loss: float) -> float:
    metrics = ctr_metrics(valid, predict(logits, valid,
                                         args.positions_per_batch))
    common.log(f"  {name} seed {seed} epoch {epoch}: loss {loss:.4f}, valid "
               f"AUC {metrics['auc']:.4f} GAUC {metrics['gauc']:.4f}")
    return metrics["auc"]

  train = training.length_bucketed_batches(
      {key: values for key, values in task.splits["train"].items()
       if key != "user"}, ctr_ranker.SEQUENCES, args.batch_size, seed,
      args.positions_per_batch)
  best = training.fit_best_epoch(ranker, train, args.learning_rate,
                                 args.max_epochs, validate, args.patience)
  metrics = {**ctr_metrics(test, predict(logits, test,
                                         args.positions_per_batch)),
             "valid_auc": best.score, "epoch": best.epoch,
             "epochs_trained": len(best.scores),
             "train_seconds": best.seconds[-1]}
  if name == "seminar" and args.pq_rerank_factors:
    metrics.update(pq_comparison(ranker.retriever, test, args, seed))
  metrics["seconds"] = time.time() - started
  return metrics


def strongest_baseline(stats: Mapping[str, dict]) -> str | None:
  """The baseline with the best mean test AUC, None without any."""
  present = [name for name in BASELINES if name in stats]
  return max(present, key=lambda name: stats[name]["auc"]["mean"],
             default=None)


def beats_in_every_seed(stats: Mapping[str, dict], name: str,
                        baseline: str, metric: str) -> bool:
  """Whether `name`'s metric is above `baseline`'s in every common seed."""
  return all(ours > theirs for ours, theirs in
             zip(stats[name][metric]["values"],
                 stats[baseline][metric]["values"]))


def results_table(stats: Mapping[str, dict]) -> str:
  """Mean ± std per model, and every row against the strongest baseline."""
  strongest = strongest_baseline(stats)
  rows = []
  for name, model_stats in stats.items():
    versus = "-"
    if strongest and name != strongest:
      versus = ", ".join(
          f"{metric.upper()} {'yes' if beats_in_every_seed(stats, name, strongest, metric) else 'no'}"
          for metric in ("auc", "gauc"))
    rows.append([name, len(model_stats["auc"]["values"])] +
                [reporting.format_mean_std(model_stats[metric])
                 for metric in METRICS] +
                [f"{model_stats['epoch']['mean']:.1f}",
                 f"{model_stats['seconds']['mean']:.0f}", versus])
  return reporting.markdown_table(
      ["model", "seeds", "test AUC", "test GAUC", "test log loss",
       "best epoch", "s/seed",
       f"beats {strongest or 'the strongest baseline'} in every seed"], rows)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--source-root", default=None,
                      help="raw data folder (default: ../shared/data)")
  parser.add_argument("--dataset", choices=sorted(RESULT_LABELS),
                      default=TAOBAO)
  parser.add_argument("--image-vectors", default=None,
                      help="an item_id -> vector file (data.item_vectors) "
                      "with a vector for every item: every model's image "
                      "feature, e.g. courier_images --save_tables")
  parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                      choices=MODELS)
  parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
  parser.add_argument("--history-length", type=int, default=512)
  parser.add_argument("--negatives", type=int, default=1,
                      help="popularity-sampled same-day negatives per "
                      "positive, in train, validation and test")
  parser.add_argument("--train-days", type=int, default=4,
                      help="days before validation whose events are train "
                      "targets; earlier days are history only; 0: every "
                      "earlier day")
  parser.add_argument("--valid-days", type=int, default=1)
  parser.add_argument("--test-days", type=int, default=1)
  parser.add_argument("--embedding-dim", type=int, default=16)
  parser.add_argument("--sasrec-length", type=int, default=50,
                      help="the most recent history items SASRec-class "
                      "reads (its n)")
  parser.add_argument("--top-k", type=int, default=20,
                      help="history items TWIN/SEMINAR attend to")
  parser.add_argument("--learning-rate", type=float, default=0.002)
  parser.add_argument("--batch-size", type=int, default=256)
  parser.add_argument("--positions-per-batch", type=int, default=16384,
                      help="history positions per batch (rows x width)")
  parser.add_argument("--max-epochs", type=int, default=10)
  parser.add_argument("--patience", type=int, default=1)
  parser.add_argument("--window-length", type=int, default=50,
                      help="history positions of a PSU window")
  parser.add_argument("--psu-epochs", type=int, default=2)
  parser.add_argument("--psu-batch-size", type=int, default=64)
  parser.add_argument("--pq-subspaces", type=int, default=8)
  parser.add_argument("--pq-rerank-factors", nargs="*", type=int,
                      default=[8])
  parser.add_argument("--pq-min-history", type=int, default=500)
  parser.add_argument("--timing-repeats", type=int, default=3,
                      help="tries per request and mode; its time is the "
                      "least")
  parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                      help="only report: merge the runs of these result "
                      "files (models trained in separate processes); "
                      "JSON:MODEL,MODEL takes only those models' runs")
  parser.add_argument("--output", default=None, help="JSON path; default "
                      "results/seminar_long_<taobao|hm>.json")
  return parser


def report(runs: Mapping[str, list[dict]], payload: Mapping,
           output: str | None) -> None:
  """Prints the table of `runs` and writes it, the stats and `payload`."""
  stats = {name: reporting.aggregate_seeds(values)
           for name, values in runs.items()}
  table = results_table(stats)
  print(table)
  strongest = strongest_baseline(stats)
  common.log(f"strongest baseline: {strongest}")
  common.write_results(
      output or common.RESULTS_DIR /
      f"seminar_long_{RESULT_LABELS[payload['dataset']]}.json",
      {**payload, "runs": runs, "stats": stats, "table": table,
       "strongest_baseline": strongest})


def merge(paths: Sequence[str], output: str | None) -> None:
  """One report from the runs of several result files (models or seeds
  trained in separate processes), each file's command and arguments kept.

  A model's runs from several files are joined in the order of `paths`:
  give them in seed order, as the rows compare seed by seed. A file that is
  itself a merge adds its runs and its parts. `PATH:MODEL,MODEL` takes only
  those models' runs from that file, e.g. to replace a model's runs with a
  rerun; its parts then name the models kept (`models_kept`).
  """
  runs, parts, datasets = {}, [], set()
  for source in paths:
    path, models = common.merge_source(source)
    with open(path) as stream:
      part = json.load(stream)
    missing = sorted(set(models or ()) - set(part["runs"]))
    if missing:
      raise SystemExit(f"{path} has no runs of {missing}")
    for name, values in part["runs"].items():
      if models is None or name in models:
        runs.setdefault(name, []).extend(values)
    # A merged file brings the parts it was merged from; a selector is
    # written on each, so that a part's command no longer stands for runs
    # the report does not hold.
    for brought in part["parts"] if "parts" in part else [
        {key: part[key] for key in ("command", "args", "seconds",
                                    "machine")}]:
      if models is not None:
        ran = brought.get("models_kept", brought["args"].get("models", models))
        brought = {**brought, "models_kept": sorted(set(models) & set(ran))}
      parts.append(brought)
    datasets.add(part["dataset"])
  if len(datasets) != 1:
    raise SystemExit(f"the files hold runs of {sorted(datasets)}: merge one "
                     "dataset's runs")
  report(runs, {"dataset": datasets.pop(), "queries": QUERIES,
                "parts": parts}, output)


def image_table(path: str, item_ids: Sequence[str]) -> np.ndarray:
  """Every item's vector from an `item_id -> vector` file.

  Raises:
    SystemExit: an item has no vector (never a silent zero row).
  """
  table, found = item_vectors.load_item_vectors(path, item_ids)
  missing = [item_ids[index] for index in np.flatnonzero(~found[1:]) + 1]
  if missing:
    raise SystemExit(f"{path}: no vector for {len(missing)} of the "
                     f"{len(item_ids) - 1} items, e.g. {missing[:5]}")
  return table


def main(argv: Sequence[str] | None = None) -> None:
  args = _parser().parse_args(argv)
  if args.merge:
    merge(args.merge, args.output)
    return
  started = time.time()
  dataset = seminar_long_data.load(
      args.dataset, args.source_root or importers.default_source_root())
  task = seminar_long_data.build(dataset, args.history_length, args.negatives,
                                 valid_days=args.valid_days,
                                 test_days=args.test_days,
                                 train_days=args.train_days or None,
                                 window_length=args.window_length)
  images = (None if args.image_vectors is None
            else image_table(args.image_vectors, task.item_ids))
  common.log(f"{task.num_items - 1} items; examples " + ", ".join(
      f"{split} {len(examples[ctr_ranker.LABEL])} (mean history "
      f"{history_lengths(examples).mean():.0f})"
      for split, examples in task.splits.items()))
  runs: dict[str, list[dict]] = {}
  for name in args.models:
    for seed in args.seeds:
      metrics = run(name, task, args, seed, images)
      common.log(f"{name} seed {seed}: " + ", ".join(
          f"{key} {value:.4f}" for key, value in metrics.items()))
      runs.setdefault(name, []).append(metrics)
  report(runs, {"dataset": args.dataset, "args": vars(args),
                "queries": QUERIES,
                "command": common.command("benchmarks.seminar_long", argv),
                "machine": common.machine(),
                "seconds": time.time() - started}, args.output)


if __name__ == "__main__":
  main()
