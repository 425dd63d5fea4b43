CREATE TABLE {db}.active_version
(
    `at` UInt64,
    `upload_id` UInt64
)
ENGINE = MergeTree
ORDER BY at
SETTINGS index_granularity = 8192
