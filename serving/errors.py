"""Failed requests as gRPC statuses, and the checks every RPC shares.

Each handler raises `ServingError` with the status TF Serving would answer;
the gRPC layer (`serving.server`) turns it into the reply.
"""

from __future__ import annotations

import dataclasses
import re
import time

import grpc
import tensorflow as tf

# A plain directory name: a request's model name can never reach another path.
MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,255}")
# Status messages travel in trailing metadata, which clients cap (8 KiB by
# default); echoing a request's multi-megabyte name must not break the reply.
_MAX_MESSAGE_CHARS = 2000
_GRPC_CODE_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


class ServingError(Exception):
  """A failed request, with the gRPC status code to answer it with."""

  def __init__(self, code: grpc.StatusCode, message: str):
    super().__init__(message)
    self.code = code
    self.message = message


def invalid_argument(message: str) -> ServingError:
  return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def grpc_code(error: tf.errors.OpError) -> grpc.StatusCode:
  """TF error codes and gRPC status codes share their numbering."""
  return _GRPC_CODE_BY_VALUE.get(error.error_code, grpc.StatusCode.INTERNAL)


def check_model_name(name: str) -> None:
  """Refuses a model name that is not a plain directory name.

  Raises:
    ServingError: INVALID_ARGUMENT for anything but 1-255 of
      `[A-Za-z0-9_.-]`, and for "." and "..".
  """
  if not MODEL_NAME_PATTERN.fullmatch(name) or name in (".", ".."):
    raise invalid_argument(
        f"invalid model name {name[:100]!r}: expected 1-255 letters, digits, "
        "'_', '.' or '-', and not '.' or '..'")


def bounded_message(message: str) -> str:
  if len(message) <= _MAX_MESSAGE_CHARS:
    return message
  return message[:_MAX_MESSAGE_CHARS] + f"... ({len(message)} characters)"


@dataclasses.dataclass(frozen=True)
class Deadline:
  """When a request must be answered by, on the monotonic clock.

  Attributes:
    expires_at: `time.monotonic()` value after which the answer is too late.
    source: what set it, for the error message.
  """
  expires_at: float
  source: str

  @classmethod
  def of(cls, context: grpc.ServicerContext,
         max_request_seconds: float) -> "Deadline":
    """The client's deadline or the server's cap, whichever comes first."""
    remaining = context.time_remaining()
    if remaining is not None and remaining < max_request_seconds:
      return cls(time.monotonic() + remaining, "the client's deadline")
    return cls(time.monotonic() + max_request_seconds,
               f"--max_request_seconds={max_request_seconds:g}")

  def check(self, stage: str) -> None:
    """Stops a request whose answer could no longer arrive in time.

    Raises:
      ServingError: DEADLINE_EXCEEDED.
    """
    if time.monotonic() >= self.expires_at:
      raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                         f"{self.source} passed {stage}")
