"""CTR families: `courier` (pre-training of item content) and `ranking`.

The models (`courier`, `ranking`), their content inputs
(`content_features`), validation on labelled rows carved from train
(`validation`), Platt calibration (`calibration`), the Trainer (`trainer`)
and the SavedModels (`export`).
"""
