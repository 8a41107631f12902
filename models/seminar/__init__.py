"""SEMINAR families: `seminar_psu` (pre-training) and `seminar` (ranking).

The retriever with PQ attention (`model`), its pair encoder (`encoder`), the
pretraining search unit (`psu`), the hand-over between them (`checkpoint`),
what both Trainers read (`inputs`), the Trainers (`trainer`) and the scorer
they export (`export`). For the long-history benchmark, the paper's baselines
as CTR rankers (`din`, `sim` with `hard_search`, on `item_features`)
and SEMINAR's retriever as one (`retriever_ranker`), all trained by
`ctr_ranker`.
"""
