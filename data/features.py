"""The one registry of feature names and shapes.

Example generation writes the raw features, `preprocessing_fn` turns them into
the transformed features, models read the transformed ones and serving
signatures accept the raw ones. All of them import the names from here so that
a rename happens in one place. Signature and output names live in
`models.serving_names`.
"""

# Raw features. An eval example (and a serving request) is one positive
# interaction with the user's earlier positives as history. A train example
# is one per user: the user's newest train positive, with every earlier train
# positive as history and, aligned with it, each one's own time, type, title,
# categories and query (`HISTORY_TIMESTAMPS` ...), so that the Trainer
# rebuilds every train row from it (`models.user_rows`) and no history is
# stored twice.
USER_ID = "user_id"
ITEM_ID = "item_id"
TIMESTAMP = "timestamp"
LABEL = "label"
ITEM_TYPE = "item_type"
QUERY = "query"
ITEM_TITLE = "item_title"
ITEM_CATEGORIES = "item_categories"
# The user's earlier positive items, oldest first, at most HISTORY_LENGTH.
HISTORY_ITEM_IDS = "history_item_ids"
# The search query of each history interaction, aligned one-to-one with
# HISTORY_ITEM_IDS, "" where it had none. Optional in requests and in examples
# written before it existed: a missing list means no query anywhere.
HISTORY_QUERIES = "history_queries"
# Per history position of a train example, aligned with HISTORY_ITEM_IDS;
# absent on eval examples and requests, whose history items are context only.
HISTORY_TIMESTAMPS = "history_timestamps"
# The raw features that are lists of ints (the other lists hold strings).
INT_LIST_FEATURES = (HISTORY_TIMESTAMPS,)
HISTORY_ITEM_TYPES = "history_item_types"
HISTORY_ITEM_TITLES = "history_item_titles"
# Each position's categories joined by CATEGORY_SEPARATOR.
HISTORY_ITEM_CATEGORIES = "history_item_categories"
CATEGORY_SEPARATOR = "|"
# A train example's CTR negatives: the same number for each of its positives
# (the history positions, then the example's own item), in that order, each
# with its title and joined categories. Empty when none are sampled.
NEGATIVE_ITEM_IDS = "negative_item_ids"
NEGATIVE_ITEM_TITLES = "negative_item_titles"
NEGATIVE_ITEM_CATEGORIES = "negative_item_categories"
# On eval rows: every item of the user's train split, which evaluation never
# recommends back (HISTORY_ITEM_IDS holds only the newest HISTORY_LENGTH of
# them). Empty on train rows, which do not need it.
SEEN_ITEM_IDS = "seen_item_ids"
# Evaluation slices, computed from the training split only.
USER_ACTIVITY_BUCKET = "user_activity_bucket"
ITEM_POPULARITY_BUCKET = "item_popularity_bucket"

SLICE_FEATURES = (USER_ACTIVITY_BUCKET, ITEM_POPULARITY_BUCKET, ITEM_TYPE)

# Raw features a client sends to ask for recommendations for one user.
QUERY_RAW_FEATURES = (USER_ID, HISTORY_ITEM_IDS, TIMESTAMP)
# Raw features describing one candidate item.
CANDIDATE_RAW_FEATURES = (ITEM_ID, ITEM_TITLE, ITEM_CATEGORIES)

# Transformed features.
USER_INDEX = "user_index"
ITEM_INDEX = "item_index"
HISTORY_ITEM_INDICES = "history_item_indices"
HISTORY_LENGTH_FEATURE = "history_length"
TITLE_TOKEN_INDICES = "title_token_indices"
CATEGORY_INDICES = "category_indices"
# The interaction's search query (raw `query`), split like titles and indexed
# in the title token vocabulary, so that query keywords and item text share
# one token space (SEMINAR); all padding when the interaction has no query.
QUERY_TOKEN_INDICES = "query_token_indices"
# HISTORY_QUERIES tokenized like QUERY_TOKEN_INDICES, history position p in
# columns [p * QUERY_LENGTH, (p + 1) * QUERY_LENGTH): a flat
# `[HISTORY_LENGTH * QUERY_LENGTH]`, row-major `[HISTORY_LENGTH, QUERY_LENGTH]`,
# aligned with HISTORY_ITEM_INDICES.
HISTORY_QUERY_TOKEN_INDICES = "history_query_token_indices"
# The behaviour type (the contract's `event`, e.g. Taobao's pv/cart/fav/buy)
# of each history position, aligned with HISTORY_ITEM_INDICES, 0 = none
# (GUIM's token types). Only the offline benchmark builds it
# (`offline_eval.retrieval_inputs`): example generation does not carry the
# event yet, so pipeline models never receive it.
HISTORY_EVENT_INDICES = "history_event_indices"
# Optional precomputed image vector of an item (`[dim]` floats), for models
# configured with an image size (e.g. GUIM's `image_dim`).
ITEM_IMAGE_EMBEDDING = "item_image_embedding"
# Items the user saw but did not pick, 0 = none (COURIER's hard negatives).
HARD_NEGATIVE_ITEM_INDICES = "hard_negative_item_indices"
# GMN's dual graph: the user's video neighbours and item neighbours (both in
# the item vocabulary, split by `item_type`), oldest first, 0-padded. In the
# pipeline they are the history split in two, so HISTORY_LENGTH bounds them.
VIDEO_NEIGHBOUR_INDICES = "video_neighbour_indices"
ITEM_NEIGHBOUR_INDICES = "item_neighbour_indices"
HOUR_OF_DAY = "hour_of_day"
DAY_OF_WEEK = "day_of_week"
TIMESTAMP_Z = "timestamp_z"

# A train example's positives as a sequence, transformed once each: the
# history positions that carry their own features, then the example's item
# (an eval example or a request has only its item). Per-position features
# are flat, position p in `[p * width, (p + 1) * width)`. `models.user_rows`
# expands them into the per-interaction features above.
SEQUENCE_ITEM_INDICES = "sequence_item_indices"
SEQUENCE_IS_VIDEO = "sequence_is_video"
SEQUENCE_TITLE_TOKEN_INDICES = "sequence_title_token_indices"
SEQUENCE_CATEGORY_INDICES = "sequence_category_indices"
SEQUENCE_QUERY_TOKEN_INDICES = "sequence_query_token_indices"
SEQUENCE_HOUR_OF_DAY = "sequence_hour_of_day"
SEQUENCE_DAY_OF_WEEK = "sequence_day_of_week"
SEQUENCE_TIMESTAMP_Z = "sequence_timestamp_z"
# The CTR negatives of the sequence's positives, NEGATIVE_ITEM_IDS's order.
NEGATIVE_ITEM_INDICES = "negative_item_indices"
NEGATIVE_TITLE_TOKEN_INDICES = "negative_title_token_indices"
NEGATIVE_CATEGORY_INDICES = "negative_category_indices"

# Vocabulary files written by tf.Transform.
USER_VOCAB = "user_id_vocab"
ITEM_VOCAB = "item_id_vocab"
TITLE_TOKEN_VOCAB = "title_token_vocab"
CATEGORY_VOCAB = "category_vocab"
# Item ids whose item_type is "video", plus "" (see preprocessing_fn).
VIDEO_VOCAB = "video_id_vocab"

# Fixed lengths of the padded sequence features. Index 0 is padding in every
# index feature, so vocabulary entry i is stored as i + 1 and the OOV bucket
# sits right after the vocabulary.
HISTORY_LENGTH = 50
TITLE_LENGTH = 16
CATEGORY_LENGTH = 8
QUERY_LENGTH = 8
PADDING_INDEX = 0
NUM_OOV_BUCKETS = 1
