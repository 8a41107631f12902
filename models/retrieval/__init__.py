"""Retrieval families: a user's query scored against the whole catalogue.

The neural towers (`two_tower`, `sasrec`, `guim`, `gmn`), the Trainer they
share (`trainer`), their validation on rows carved from train
(`validation`) and their SavedModel (`export`).
"""
