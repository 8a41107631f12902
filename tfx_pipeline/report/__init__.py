"""What a finished run recorded, read back: its summary, HTML report, plots."""
