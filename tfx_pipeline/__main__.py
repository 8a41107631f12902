"""`python -m tfx_pipeline`: see `tfx_pipeline.cli`."""

from tfx_pipeline import cli

if __name__ == "__main__":
  cli.exit_with_main()
