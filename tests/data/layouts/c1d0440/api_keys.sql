CREATE TABLE {db}.api_keys
(
    `name` String,
    `version` UInt64,
    `doc` String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY name
SETTINGS index_granularity = 8192
