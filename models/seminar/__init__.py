"""SEMINAR families: `seminar_psu` (pre-training) and `seminar` (ranking).

The retriever with PQ attention (`model`), its pair encoder (`encoder`), the
pretraining search unit (`psu`), the hand-over between them (`checkpoint`),
what both Trainers read (`inputs`), the Trainers (`trainer`) and the scorer
they export (`export`).
"""
