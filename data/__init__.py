"""Input data contract: reading, validating, importing and generating datasets."""
