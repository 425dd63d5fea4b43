CREATE TABLE {db}.games_v2
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
    `reviews` UInt64,
    `review_score` Nullable(Float64),
    `rating` Nullable(Float64),
    `score_rank` Nullable(UInt32),
    `developers` Array(String),
    `publishers` Array(String),
    `categories` Array(LowCardinality(String)),
    `genres` Array(LowCardinality(String)),
    `tags` Array(LowCardinality(String)),
    `_row` UInt64,
    `_bad` Map(String, String),
    INDEX i_name name TYPE text(tokenizer = splitByNonAlpha, preprocessor = lower(name)) GRANULARITY 100000000,
    INDEX i_about_the_game about_the_game TYPE text(tokenizer = splitByNonAlpha, preprocessor = lower(about_the_game)) GRANULARITY 100000000,
    INDEX i_supported_languages supported_languages TYPE text(tokenizer = array) GRANULARITY 100000000,
    INDEX i_developers developers TYPE text(tokenizer = array) GRANULARITY 100000000,
    INDEX i_publishers publishers TYPE text(tokenizer = array) GRANULARITY 100000000,
    INDEX i_categories categories TYPE text(tokenizer = array) GRANULARITY 100000000,
    INDEX i_genres genres TYPE text(tokenizer = array) GRANULARITY 100000000,
    INDEX i_tags tags TYPE text(tokenizer = array) GRANULARITY 100000000
)
ENGINE = MergeTree
ORDER BY app_id
SETTINGS index_granularity = 1024, max_bytes_to_merge_at_max_space_in_pool = 161061273600, max_bytes_to_merge_at_min_space_in_pool = 1048576, vertical_merge_algorithm_min_rows_to_activate = 1, vertical_merge_algorithm_min_columns_to_activate = 1, merge_max_block_size = 2048
COMMENT 'upload:2'
