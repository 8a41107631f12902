"""The one registry of model families: one `FamilySpec` per family.

Everything that depends on the family reads it from here: the Trainer's
dispatch (`models.trainer.run_fn`), the pipeline topology (a pre-training
Trainer, CTR negatives, the index or not), the Evaluator's metrics and gate,
the CLI's summary. The module imports no TensorFlow (classes and functions
are named by dotted path and loaded on use), so the CLI and the pipeline
compiler can read it cheaply.

A new family is one entry here plus its module. A retrieval family's module
provides a hyperparameter dataclass (an `hparams.HParams`) and a
`build_model(vocab, catalogue_features, item_sampling_probability, config)`
returning a `two_tower.RetrievalModel`; the shared retrieval trainer does
the rest (training, the catalogue, the export, the index):

    "my_tower": FamilySpec(
        name="my_tower", kind=RETRIEVAL,
        config="models.retrieval.my_tower:MyTowerConfig",
        build_model="models.retrieval.my_tower:build_my_tower"),

A ranking (CTR) or pre-training family names its own `train` function,
`(fn_args, tft_output, hparams, spec) -> None`, which writes its `export`
to `fn_args.serving_model_dir`. So may a retrieval family that is not a
neural `RetrievalModel` (`ease`, `item_knn`: closed-form item-item models);
its export serves the retrieval signatures, and with `indexed=False` the
pipeline pushes it without a ScaNN index. So do the graph families
(`lightgcn`, `gmn`), whose models are built over the train rows' graph
(`models.retrieval.graph_trainer`).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Optional

# Retrieval: scores the whole catalogue for a user; evaluated by full-ranking
# Recall@k/NDCG@k, gated on `gate.metric`, pushed with a ScaNN index.
RETRIEVAL = "retrieval"
# Ranking: a CTR model scoring (user, item) pairs; trained with sampled
# label-0 examples, evaluated by AUC and log loss, pushed without an index.
RANKING = "ranking"
# Pre-training: trained only to hand its model to another family's Trainer
# as `fn_args.base_model`; never evaluated or pushed.
PRETRAINING = "pretraining"
KINDS = (RETRIEVAL, RANKING, PRETRAINING)

RETRIEVAL_TRAIN = "models.retrieval.trainer:train_retrieval"
RETRIEVAL_EXPORT = "models.retrieval.export:RetrievalServingModule"


def load(dotted: str) -> Any:
  """The object a `"package.module:attribute"` path names."""
  module_name, _, attribute = dotted.partition(":")
  return getattr(importlib.import_module(module_name), attribute)


@dataclasses.dataclass(frozen=True)
class FamilySpec:
  """How the pipeline trains, evaluates and serves one model family.

  Attributes:
    name: the `--model-family` value.
    kind: `RETRIEVAL`, `RANKING` or `PRETRAINING`.
    config: `"module:Class"` of the family's hyperparameter dataclass.
    train: `"module:function"` that trains and exports the model; neural
      retrieval families share `RETRIEVAL_TRAIN`.
    build_model: retrieval families trained by `RETRIEVAL_TRAIN`:
      `"module:function"` building the model it fits.
    export: `"module:attribute"` of what the family's train function
      writes its serving-model directory with, read from here by that
      function: the `tf.Module` class the SavedModel is saved from (what
      the served signatures are), or for `seminar_psu`, which hands a
      checkpoint to the `seminar` Trainer, the function that writes it.
    pretrained_by: the family whose Trainer runs first and hands its model
      over as `base_model`, if any.
    indexed: retrieval families: whether the pipeline builds a ScaNN index
      of the candidate embeddings before pushing. False for families that
      score the catalogue otherwise (item-item weights).
  """
  name: str
  kind: str
  config: str
  train: str = RETRIEVAL_TRAIN
  build_model: Optional[str] = None
  export: str = RETRIEVAL_EXPORT
  pretrained_by: Optional[str] = None
  indexed: bool = True

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"family {self.name!r}: kind must be one of {KINDS}")
    shared_trainer = self.train == RETRIEVAL_TRAIN
    if shared_trainer != (self.build_model is not None):
      raise ValueError(f"family {self.name!r}: a family trained by "
                       f"{RETRIEVAL_TRAIN} names a build_model, any other "
                       "names its own train and no build_model")
    if shared_trainer and self.kind != RETRIEVAL:
      raise ValueError(f"family {self.name!r}: only retrieval families name "
                       "a build_model; name the family's own train")

  @property
  def is_ranking(self) -> bool:
    return self.kind == RANKING

  @property
  def builds_index(self) -> bool:
    """Whether the pipeline indexes the trained model before pushing it."""
    return self.kind == RETRIEVAL and self.indexed

  def config_class(self) -> type:
    return load(self.config)

  def hparams_known(self, hparams: dict[str, Any]) -> dict[str, Any]:
    """The entries of `hparams` that this family's config declares."""
    names = {field.name for field in dataclasses.fields(self.config_class())}
    return {name: value for name, value in hparams.items() if name in names}


_CTR_TRAINER = "models.ctr.trainer"
# The graph families' Trainer: the graph of the train rows, frozen tables in
# the export.
_GRAPH_TRAINER = "models.retrieval.graph_trainer"
_RANKER_EXPORT = "models.ctr.export:RankingServingModule"
_SEMINAR_TRAINER = "models.seminar.trainer"
_ITEM_ITEM_TRAIN = "models.item_item.trainer:train"
_ITEM_ITEM_EXPORT = "models.item_item.export:ItemNeighboursServingModule"

FAMILIES: dict[str, FamilySpec] = {spec.name: spec for spec in (
    FamilySpec("two_tower", RETRIEVAL, "models.retrieval.two_tower:TwoTowerConfig",
               build_model="models.retrieval.two_tower:build_two_tower"),
    FamilySpec("sasrec", RETRIEVAL, "models.retrieval.sasrec:SasRecConfig",
               train="models.retrieval.sasrec_trainer:train_sasrec"),
    FamilySpec("guim", RETRIEVAL, "models.retrieval.guim:GuimConfig",
               build_model="models.retrieval.guim:build_guim"),
    FamilySpec("gmn", RETRIEVAL, "models.retrieval.gmn:GmnConfig",
               train=f"{_GRAPH_TRAINER}:train_gmn"),
    FamilySpec("lightgcn", RETRIEVAL, "models.retrieval.lightgcn:LightGcnConfig",
               train=f"{_GRAPH_TRAINER}:train_lightgcn"),
    FamilySpec("ease", RETRIEVAL, "models.item_item.ease:EaseConfig",
               train=_ITEM_ITEM_TRAIN,
               export=_ITEM_ITEM_EXPORT, indexed=False),
    FamilySpec("item_knn", RETRIEVAL, "models.item_item.item_knn:ItemKnnConfig",
               train=_ITEM_ITEM_TRAIN,
               export=_ITEM_ITEM_EXPORT, indexed=False),
    FamilySpec("courier", PRETRAINING, "models.ctr.courier:CourierConfig",
               train=f"{_CTR_TRAINER}:train_courier",
               export="models.ctr.export:CourierExportModule"),
    FamilySpec("ranking", RANKING, "models.ctr.ranking:RankingConfig",
               train=f"{_CTR_TRAINER}:train_ranking",
               export=_RANKER_EXPORT,
               pretrained_by="courier"),
    FamilySpec("seminar_psu", PRETRAINING, "models.seminar.model:SeminarConfig",
               train=f"{_SEMINAR_TRAINER}:train_seminar_psu",
               export="models.seminar.checkpoint:save_psu"),
    FamilySpec("seminar", RANKING, "models.seminar.model:SeminarConfig",
               train=f"{_SEMINAR_TRAINER}:train_seminar",
               export=_RANKER_EXPORT,
               pretrained_by="seminar_psu"),
)}


def default_family(dataset: str) -> str:
  """The family `vrec run` trains on `dataset` when none is named.

  The rule: the two-tower on MovieLens-100K, the SASRec-class model on any
  other log (Amazon Grocery, a user's own contract directory). What the run
  pushes is chosen in the run, by one rule for every log
  (`baselines.select_best`, `components.model_selector`): the best on
  validation carved from train of the model and the classical baselines
  trained beside it (EASE^R and item-kNN, at any catalogue size). So the
  default family is the neural one worth training, and a log where EASE^R is
  better ships EASE^R.

  - MovieLens-100K: the two-tower beats EASE^R on every metric in every seed
    with request time, under both splits; without it, it does not
    (docs/results.md, "The default model against EASE^R").
  - Any other log: the SASRec-class model, trained to convergence. On
    Grocery it beats EASE^R on every metric in every seed under both splits
    with time features, and under leave-last-out without them; under the
    temporal split without them it wins Recall@10 and Recall@50 and loses
    NDCG@10, and there the selection decides.

  Args:
    dataset: an importer name (`data.importers.IMPORTERS`) or "contract".

  Returns:
    The name of a family of `FAMILIES`.
  """
  return "two_tower" if dataset == "movielens-100k" else "sasrec"


def get(name: str) -> FamilySpec:
  """The spec of family `name`.

  Raises:
    ValueError: naming the registered families, if `name` is not one.
  """
  if name not in FAMILIES:
    raise ValueError(f"unknown model family {name!r}; "
                     f"registered: {sorted(FAMILIES)}")
  return FAMILIES[name]


# The Trainer's `custom_config`, written by the pipeline and read by
# `models.trainer.run_fn`.
FAMILY_KEY = "model_family"
HPARAMS_KEY = "hparams"
# Names the model in reports that compare several Trainers' models.
LABEL_KEY = "label"
# The run's seed: weight initialisation, shuffling and sampling in training.
SEED_KEY = "seed"
HISTORY_LENGTH_KEY = "history_length"
# The `tf.distribute` strategy the Trainer runs under (`models.distribution`),
# and where `BackupAndRestore` keeps its last epoch (default: under the
# Trainer's model_run dir).
DISTRIBUTION_KEY = "distribution"
BACKUP_DIR_KEY = "backup_dir"
# A baseline's fit budget in seconds (`baselines.fit_timeout_s`), and the
# wall-clock time (Unix seconds) its fit process is stopped at, which the
# contained Trainer adds for its child (`tfx_pipeline.components.baseline_fit`).
FIT_TIMEOUT_KEY = "fit_timeout_s"
FIT_DEADLINE_KEY = "fit_deadline_unix_s"
