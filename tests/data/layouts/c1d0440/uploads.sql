CREATE TABLE {db}.uploads
(
    `id` UInt64,
    `version` UInt64,
    `doc` String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id
SETTINGS index_granularity = 8192
