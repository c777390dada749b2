-- The shard directory on the cold path: one row per shard that has
-- written, fed from the shards' outboxes (never on the hot path).
CREATE TABLE IF NOT EXISTS _pylon_shards (
  shard TEXT PRIMARY KEY NOT NULL,
  rows INTEGER NOT NULL DEFAULT 0,
  last_seq INTEGER NOT NULL DEFAULT 0,
  last_change TEXT
);
