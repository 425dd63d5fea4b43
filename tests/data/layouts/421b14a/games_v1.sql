CREATE TABLE {db}.games_v1
(
    `app_id` UInt32,
    `name` String,
    `release_date` Nullable(Date),
    `release_date_raw` String,
    `required_age` UInt32,
    `price` Decimal(12, 2),
    `dlc_count` UInt32,
    `about_the_game` String,
    `supported_languages` Array(LowCardinality(String)),
    `windows` Bool,
    `mac` Bool,
    `linux` Bool,
    `positive` UInt32,
    `negative` UInt32,
    `score_rank` Nullable(UInt32),
    `developers` String,
    `publishers` String,
    `categories` Array(LowCardinality(String)),
    `genres` Array(LowCardinality(String)),
    `tags` Array(LowCardinality(String)),
    `_row` UInt64,
    `_bad` Map(String, String)
)
ENGINE = MergeTree
ORDER BY app_id
SETTINGS index_granularity = 8192
COMMENT 'upload:1'
