"""Self-attention over item sequences."""

from __future__ import annotations

import tensorflow as tf


class CausalSelfAttentionBlock(tf.keras.layers.Layer):
  """One pre-norm transformer block where position t sees positions <= t.

  As in SASRec (Kang & McAuley, 2018): multi-head self-attention with a causal
  mask, then a position-wise feed-forward network, each with a residual
  connection, layer normalisation and dropout. Padding positions are masked
  as keys, so they never influence a real position. A call with
  `causal=False` lets every position see every real position (BERT4Rec), with
  the same weights, for objectives that predict a masked position from both
  sides.

  Args:
    num_heads: attention heads; `dim` must be divisible by it.
    dim: model width (the input's last dimension).
    dropout: dropout rate on attention weights and sub-layer outputs.
  """

  def __init__(self, num_heads: int, dim: int, dropout: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    if dim % num_heads:
      raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
    self._config = {"num_heads": num_heads, "dim": dim, "dropout": dropout}
    self.attention_norm = tf.keras.layers.LayerNormalization(epsilon=1e-6)
    self.attention = tf.keras.layers.MultiHeadAttention(
        num_heads=num_heads, key_dim=dim // num_heads, dropout=dropout)
    self.feed_forward_norm = tf.keras.layers.LayerNormalization(epsilon=1e-6)
    self.feed_forward = tf.keras.Sequential([
        tf.keras.layers.Dense(dim, activation="relu"),
        tf.keras.layers.Dense(dim),
    ])
    self.dropout = tf.keras.layers.Dropout(dropout)

  def call(self, sequence: tf.Tensor, padding_mask: tf.Tensor,
           training: bool = False, causal: bool = True) -> tf.Tensor:
    """Applies the block.

    Args:
      sequence: `[batch, length, dim]`.
      padding_mask: `[batch, length]`, True at real positions.
      training: enables dropout.
      causal: whether position t sees only positions <= t.

    Returns:
      `[batch, length, dim]`.
    """
    key_mask = padding_mask[:, tf.newaxis, :]
    normed = self.attention_norm(sequence)
    attended = self.attention(normed, normed, attention_mask=key_mask,
                              use_causal_mask=causal, training=training)
    sequence = sequence + self.dropout(attended, training=training)
    transformed = self.feed_forward(self.feed_forward_norm(sequence))
    return sequence + self.dropout(transformed, training=training)

  def get_config(self):
    return {**super().get_config(), **self._config}


def gather_last_position(sequence: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
  """Output at each row's last real position (`lengths - 1`), zeros if empty.

  Args:
    sequence: `[batch, length, dim]`, real positions first.
    lengths: `[batch]` number of real positions.

  Returns:
    `[batch, dim]`.
  """
  lengths = tf.cast(lengths, tf.int32)
  last = tf.gather(sequence, tf.maximum(lengths - 1, 0), batch_dims=1)
  return tf.where((lengths > 0)[:, tf.newaxis], last, tf.zeros_like(last))


class CausalSequenceEncoder(tf.keras.layers.Layer):
  """Item vectors of a history -> contextual vectors, SASRec-style.

  Adds learned position embeddings, zeroes padding, applies input dropout and
  `num_blocks` causal self-attention blocks, and normalises the output. The
  sequential query towers (SASRec-class, GUIM) share it.

  Args:
    max_length: longest history; the position embedding's size.
    dim: model width.
    num_blocks: causal self-attention blocks.
    num_heads: attention heads per block.
    dropout: input and in-block dropout.
  """

  def __init__(self, max_length: int, dim: int, num_blocks: int,
               num_heads: int, dropout: float, **kwargs):
    super().__init__(**kwargs)
    self.position_embedding = tf.keras.layers.Embedding(max_length, dim)
    self.input_dropout = tf.keras.layers.Dropout(dropout)
    self.blocks = [CausalSelfAttentionBlock(num_heads, dim, dropout)
                   for _ in range(num_blocks)]
    self.output_norm = tf.keras.layers.LayerNormalization(epsilon=1e-6)

  def call(self, item_vectors: tf.Tensor, padding_mask: tf.Tensor,
           training: bool = False, causal: bool = True) -> tf.Tensor:
    """`[batch, length, dim]` item vectors -> the same shape, contextual.

    `causal=False` runs the same blocks bidirectionally (see
    `CausalSelfAttentionBlock`).
    """
    positions = tf.range(tf.shape(item_vectors)[1])
    sequence = item_vectors + self.position_embedding(positions)[tf.newaxis]
    sequence *= tf.cast(padding_mask, sequence.dtype)[:, :, tf.newaxis]
    sequence = self.input_dropout(sequence, training=training)
    for block in self.blocks:
      sequence = block(sequence, padding_mask, training=training,
                       causal=causal)
    return self.output_norm(sequence)
