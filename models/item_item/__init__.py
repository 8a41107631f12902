"""Item-item families, `ease` and `item_knn`: closed-form sparse weights.

Their fitters (`ease`, `item_knn`, on `neighbours`' sparse weights), the
hyperparameter search on a split carved from train (`tuning`), the Trainer
(`trainer`) and the SavedModel that scores the catalogue from the weights
(`export`).
"""
