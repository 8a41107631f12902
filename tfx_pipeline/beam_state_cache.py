"""The in-memory DirectRunner's side-input cache, turned off.

The in-memory worker (`--direct_running_mode=in_memory`, the local default
and the compiled Kubeflow pipeline's default) caches side inputs in a 100 MB
cache that it sizes with `objsize`, walking the globals of every loaded
module on each load: with TensorFlow loaded, a profile of a pipeline run on
a 100-user sample found about 6 % of its time there, most of it in
Transform. Beam's multi-process and portable workers run without that cache
(`--max_cache_memory_usage_mb` defaults to 0); `disable` makes the
in-memory worker read side inputs as they do.
"""

from apache_beam.runners.portability.fn_api_runner import worker_handlers


def disable() -> None:
  """Turns the cache off for the in-memory workers this process starts."""
  worker_handlers.STATE_CACHE_SIZE_MB = 0
