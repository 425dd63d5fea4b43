"""The dataset's columns, declared once, as data.

Each column names its API name, its CSV header and a Kind. The Kind says how the column is stored
(ClickHouse type), how ClickHouse turns the CSV text into it (`parse`, an SQL template over the raw
text `{r}`), when the text does not fit (`invalid`: the row is rejected, never silently altered),
and how the API filters it (`filter`). Table DDL, the ingest SELECT, API parameters, the UI and the
docs are all derived from COLUMNS: adding a column is one line there.

Derived columns (review counts, ratings, estimates) are columns like the others, with no CSV header:
`stored` ones are computed by the engine while it loads a row, from that row's parsed columns;
`virtual` ones are computed in each query, because they depend on a server setting.
"""

from dataclasses import dataclass

# The most a text field may hold: a longer one rejects its row (an upload carrying a 30 MB cell was
# stored, and its game's page answered 30 MB). Steam's longest descriptions are tens of KB.
MAX_FIELD_BYTES = 1 << 20


@dataclass(frozen=True)
class Kind:
    name: str
    filter: str  # filter family: number | decimal | float | bool | date | string | list
    ch_type: str
    parse: str  # SQL over {r} (the CSV text) giving the stored value
    invalid: str | None = None  # SQL over {r}: true when the text does not fit -> row rejected
    expects: str = "valid UTF-8 text of at most 1 MiB"  # what a valid text looks like, for error messages
    text: bool = False  # stores text: the bytes must be valid UTF-8
    # SQL over {c} (the column) and {raw} (its raw text column) writing the value back the way the
    # source file writes it, so that a CSV export uploads again to the same rows.
    csv: str = "{c}"


_SPLIT = "arrayFilter(x -> x != '', arrayMap(x -> trimBoth(x), splitByChar(',', {r})))"
# Studios are joined by a comma with no space after it; a comma followed by a space is part of a
# name: "aNCHOR Inc.,fuzz, Inc." -> ["aNCHOR Inc.", "fuzz, Inc."].
_STUDIOS = "arrayFilter(x -> x != '', arrayMap(x -> trimBoth(x), extractAll({r}, '(?:[^,]|, )+')))"


def sql_text(text: str) -> str:
    """`text` as an SQL string literal (for constants of code and schema, never a request's value)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# A Python list literal: ['English', "Ogre's", 'a\'b'] -> its elements, with the escapes of quotes and
# backslashes undone (\' \" \\; any other backslash is kept as written); an element left unquoted
# ([English, French], or the French of ['English', French]) is kept, trimmed, rather than lost. Anything
# not in brackets is a plain comma list.
# An unquoted element starts at no space, so the ", " between elements matches nothing: by hand (engine
# alone, the languages of a generated 500 MB file, median of 5, two runs) 0.304 s otherwise, 0.249 s so,
# 0.216 s before unquoted elements and escapes were read. `python bench/parse.py 500`, when every cell was
# read so: 1.60-1.71x the time of reading the same text unparsed (the other list columns 0.98-1.17x).
_PYLIST_ELEMENT = r"""'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|([^,'"\[\]\s][^,'"\[\]]*)"""
_UNESCAPE = "replaceRegexpAll(concat(g[1], g[2]), " + sql_text(r"""\\(['"\\])""") + ", " + sql_text(r"\1") + ")"
# The form nearly every row has, a list Python wrote of names with no quote or backslash in them
# (['English', 'French']), is split at each "', '" with no regular expression: exactly when the text
# is ['...'] with no " and no \ in it, and every ' between its brackets is one of a separator's (two
# per "', '", counted as the split counts them, left to right). Its elements are then what
# _PYLIST_ELEMENT reads (tests/test_load.py compares the two on generated texts).
# `python bench/parse.py 500`: see docs/measured.md (thirty-ninth pass).
_INNER = "substring({r}, 3, length({r}) - 4)"
_PLAIN_PYLIST = ("startsWith({r}, '[\\'') AND endsWith({r}, '\\']') AND length({r}) >= 4 "
                 "AND position({r}, '\"') = 0 AND position({r}, '\\\\') = 0 "
                 f"AND countSubstrings({_INNER}, '\\'') = 2 * countSubstrings({_INNER}, '\\', \\'')")
_PLAIN_ELEMENTS = f"arrayFilter(x -> x != '', splitByString('\\', \\'', {_INNER}))"
_GENERAL_PYLIST = (
    "if(startsWith(trimLeft({r}), '['), "
    f"arrayFilter(x -> x != '', arrayMap(g -> if(g[3] != '', trimBoth(g[3]), {_UNESCAPE}), "
    "extractAllGroupsVertical({r}, " + sql_text(_PYLIST_ELEMENT) + "))), " + _SPLIT + ")"
)
_PYLIST = f"if({_PLAIN_PYLIST}, {_PLAIN_ELEMENTS}, {_GENERAL_PYLIST})"
# CSV injection (OWASP): a text cell that a spreadsheet could run is exported with a leading ' so that
# it shows as text; an upload drops that one ' again (as spreadsheets do), so exports round-trip.
# "Could run": after Unicode NFKC (full-width ＝ ＠ ﹢ are = @ +; NBSP is a space) and any leading
# quotes, it starts with a tab or CR, or with whitespace (newlines too) and then = + - @ or |. Leading
# quotes count, so that a cell that already starts with ' and a formula also gets one more, and the
# upload's one dropped ' gives it back whole. Only the first 256 characters are looked at.
RUNNABLE = r"^'*([\t\r]|\s*[=+\-@|])"
_RUNNABLE_SQL = sql_text(RUNNABLE)


def _runnable(e: str) -> str:
    return f"match(normalizeUTF8NFKC(leftUTF8({e}, 256)), {_RUNNABLE_SQL})"


# Templates over {e}, an SQL text expression (valid UTF-8 in NEUTRALISE: it reads stored text). The load
# checks UTF-8 first, and also makes the text valid before normalising it: the engine does not always
# evaluate only the branch if() takes. Where the languages named UNESCAPE in their condition and both
# branches, it normalised every row, and a byte that is not UTF-8 failed the whole load (code 621)
# instead of rejecting its row (helper-76; tests/test_bad_inputs.py, every text column).
NEUTRALISE = "if(" + _runnable("{e}") + ", concat('''', {e}), {e})"
UNESCAPE = ("if(startsWith({e}, '''') AND isValidUTF8({e}), if(" + _runnable("toValidUTF8(substring({e}, 2))")
            + ", substring({e}, 2), {e}), {e})")
# ...and back, quotes and backslashes as Python's repr writes them: ['English', "Ogre's", 'a\\b', 'a\'b"c']:
# backslashes doubled; an element holding a ' and no " in double quotes, any other in single quotes with
# its ' escaped.
_BACKSLASHED = r"replaceAll(x, '\\', '\\\\')"
_PYLIST_CSV = ("concat('[', arrayStringConcat(arrayMap(x -> if(position(x, '''') > 0 AND position(x, '\"') = 0, "
               f"concat('\"', {_BACKSLASHED}, '\"'), concat('''', replaceAll({_BACKSLASHED}, '''', '\\\\'''), '''')), "
               "{c}), ', '), ']')")
# The CSV writes "Oct 21, 2008", or "May 2020" when only the month is known (stored as its 1st day).
_DATE_FORMATS = ("%b %e, %Y", "%b %Y", "%M %e, %Y", "%M %Y", "%Y-%m-%d")
# Parsed as a DateTime64 in UTC: a DateTime ends in 2106 (Feb 8, 2106 wrapped to 1970-01-01) and reads the
# server's time zone (east of UTC, Jan 1, 1970 fell before its start). A day the column's Date cannot hold
# (before 1970, after 2149-06-06) is not a date: stored empty, its text kept, as any other.
# The first format that reads it: multiIf parses by the next format only the rows the last one could not
# read (coalesce() parsed every row by every format: counting the dates at 500 MB took 139 ms so, 25 so).
_PARSES = [f"parseDateTime64OrNull(trimBoth({{r}}), '{f}', 'UTC')" for f in _DATE_FORMATS]
_PARSED = "multiIf(" + ", ".join(f"isNotNull({p}), {p}" for p in _PARSES) + ", NULL)"
_DATE = (f"if({_PARSED} BETWEEN toDateTime64('1970-01-01', 0, 'UTC') AND toDateTime64('2149-06-06', 0, 'UTC'), "
         f"toDate({_PARSED}), NULL)")

KINDS = {
    k.name: k
    for k in (
        Kind("uint", "number", "UInt32", "toUInt32OrZero({r})", "toUInt32OrNull({r}) IS NULL",
             "a whole number from 0 to 4294967295"),
        # A price: never below 0 (a "-1.50" loaded, fell in the "under 5" band and gave negative revenue).
        Kind("decimal", "decimal", "Decimal(12, 2)", "toDecimal64OrZero({r}, 2)",
             "NOT match({r}, '^[0-9]{{1,10}}(\\\\.[0-9]{{1,2}})?$')", "a number from 0, with at most 2 decimals"),
        Kind("bool", "bool", "Bool", "lower({r}) IN ('true', '1')", "lower({r}) NOT IN ('true', 'false', '1', '0')",
             "TRUE or FALSE (any case) or 1/0"),
        # An unparseable date is not an error: NULL, with the text kept in <name>_raw (and a warning).
        Kind("date", "date", "Nullable(Date)", _DATE, text=True, csv="{raw}"),
        Kind("string", "string", "String", "{r}", text=True),
        Kind("list", "list", "Array(LowCardinality(String))", _SPLIT, text=True, csv="arrayStringConcat({c}, ',')"),
        Kind("pylist", "list", "Array(LowCardinality(String))", _PYLIST, text=True, csv=_PYLIST_CSV),
        # Tens of thousands of distinct studios: plain strings rather than a dictionary.
        Kind("studios", "list", "Array(String)", _STUDIOS, text=True, csv="arrayStringConcat({c}, ',')"),
        # Kinds of derived columns (no CSV text to parse).
        Kind("count", "number", "UInt64", ""),
        Kind("float", "float", "Float64", ""),
    )
}


@dataclass(frozen=True)
class Column:
    name: str  # API name, snake_case
    header: str  # CSV header
    kind: Kind
    nullable: bool = False  # an empty CSV field is NULL (otherwise it must parse)
    doc: str = ""
    example: str = ""
    # Derived columns: SQL over other columns' identifiers. `stored`: computed at load and kept;
    # `virtual`: computed by every query (may use {review_multiple:Float64}, bound from settings).
    stored: str | None = None
    virtual: str | None = None
    formula: str = ""  # the formula in words, for /schema, the README and the page
    source: str = ""  # where the formula comes from
    unit: str = ""  # how a value reads, for the page and /schema: one of UNITS (empty: plain text or list)
    cents: bool = False  # a float whose values are rounded to 2 places: it sums as whole cents (Metric.over)

    @property
    def derived(self) -> bool:
        return self.stored is not None or self.virtual is not None

    @property
    def ch_type(self) -> str:
        t = self.kind.ch_type
        return f"Nullable({t})" if self.nullable and not t.startswith("Nullable") else t

    @property
    def raw_name(self) -> str | None:
        """Dates keep their original text beside the parsed value."""
        return f"{self.name}_raw" if self.kind.name == "date" else None


def _c(name, header, kind, **kw) -> Column:
    return Column(name, header, KINDS[kind], **kw)


def _d(name, kind, sql, formula, doc, example, source="", *, virtual=False, nullable=False, unit="",
       cents=False) -> Column:
    """A derived column: no CSV header; `sql` over other columns' identifiers."""
    return Column(name, "", KINDS[kind], nullable, doc, example, None if virtual else sql, sql if virtual else None,
                  formula, source, unit, cents)


# How a value reads (in /schema; the page formats and takes filter input by it). A percent is stored
# as a share from 0 to 1 and shown, and typed into filters, as 0 to 100.
UNITS = {"id": "a label: no thousands separator", "year": "a calendar year", "month": "YYYY-MM",
         "money": "USD", "percent": "a share from 0 to 1, shown as 0 to 100 %", "count": "a whole number of things",
         "number": "any other quantity", "date": "YYYY-MM-DD"}


# The review multiple ("Boxleiter number"): estimated copies sold per Steam review. Bound as a
# query parameter from GAMELENS_REVIEW_MULTIPLE (see settings.py for the sources of the default).
_OWNERS = "toUInt64(round(`reviews` * {review_multiple:Float64}))"
_STEAMDB = "https://steamdb.info/blog/steamdb-rating/ (Torn, SteamDB blog, 27 Sep 2017)"
REVENUE_CAVEAT = ("A rough gross figure in USD: estimated owners times today's price, before Steam's cut, taxes, "
                  "discounts, regional prices and refunds.")

KEY = "app_id"
COLUMNS: tuple[Column, ...] = (
    _c("app_id", "AppID", "uint", doc="Steam application id", example="20200", unit="id"),
    _c("name", "Name", "string", doc="Game title", example="Galactic Bowling"),
    _c("release_date", "Release date", "date", doc="Release day; month-only dates are the 1st",
       example="2008-10-21", unit="date"),
    _c("required_age", "Required age", "uint", doc="Minimum age", example="0", unit="number"),
    _c("price", "Price", "decimal", doc="Price in USD, exact", example="19.99", unit="money"),
    _c("dlc_count", "DLC count", "uint", doc="Number of DLCs", example="0", unit="count"),
    _c("about_the_game", "About the game", "string", doc="Description", example="bowling"),
    _c("supported_languages", "Supported languages", "pylist", doc="Languages", example="English"),
    _c("windows", "Windows", "bool", doc="Runs on Windows", example="true"),
    _c("mac", "Mac", "bool", doc="Runs on macOS", example="false"),
    _c("linux", "Linux", "bool", doc="Runs on Linux", example="false"),
    _c("positive", "Positive", "uint", doc="Positive reviews", example="6", unit="count"),
    _c("negative", "Negative", "uint", doc="Negative reviews", example="11", unit="count"),
    _d("reviews", "count", "toUInt64(`positive`) + `negative`", "positive + negative",
       "Reviews, positive and negative", "17", unit="count"),
    _d("review_score", "float", "if(`reviews` = 0, NULL, `positive` / `reviews`)",
       "positive / reviews (0 to 1); empty when there are no reviews", "Share of positive reviews", "0.8",
       nullable=True, unit="percent"),
    _d("rating", "float",
       "if(`reviews` = 0, NULL, `review_score` - (`review_score` - 0.5) * pow(2, -log10(`reviews` + 1)))",
       "score - (score - 0.5) * 2^(-log10(reviews + 1)), score = review_score; empty when there are no reviews",
       "SteamDB's rating: the review score pulled towards 50% the fewer reviews there are", "0.8", _STEAMDB,
       nullable=True, unit="percent"),
    _d("est_owners", "count", _OWNERS, "reviews * the review multiple (GAMELENS_REVIEW_MULTIPLE)",
       "Estimated copies sold (the Boxleiter method); a rough figure", "1000",
       "The Boxleiter method: Mike Boxleiter (2014), ranges by Jake Birkett and GameDiscoverCo", virtual=True,
       unit="count"),
    _d("est_revenue", "float", f"round(toFloat64({_OWNERS}) * toFloat64(`price`), 2)", "est_owners * price",
       "Estimated gross revenue in USD. " + REVENUE_CAVEAT, "100000", virtual=True, unit="money", cents=True),
    _c("score_rank", "Score rank", "uint", nullable=True, doc="Score rank (often empty)", example="1", unit="id"),
    _c("developers", "Developers", "studios", doc="Developers (a list of studios)", example="Perpetual FX Creative"),
    _c("publishers", "Publishers", "studios", doc="Publishers (a list of studios)", example="Perpetual FX Creative"),
    _c("categories", "Categories", "list", doc="Steam categories", example="Single-player"),
    _c("genres", "Genres", "list", doc="Genres", example="Indie"),
    _c("tags", "Tags", "list", doc="User tags", example="Casual"),
)
SOURCE_COLUMNS = tuple(c for c in COLUMNS if not c.derived)  # those read from the CSV
STORED_COLUMNS = tuple(c for c in COLUMNS if c.virtual is None)  # those in the table
BY_NAME = {c.name: c for c in COLUMNS}

# Stored beside the data, never shown by the API: the data row number in the source file
# (1 = first row after the header) and, for rejected rows, column -> offending text.
ROW_COL, BAD_COL = "_row", "_bad"


def output_names() -> list[str]:
    """Every column the API returns, in order (date columns followed by their raw text)."""
    names = []
    for c in COLUMNS:
        names.append(c.name)
        if c.raw_name:
            names.append(c.raw_name)
    return names


# --- derived buckets and metrics (aggregates group by buckets and columns, and compute metrics) ---


@dataclass(frozen=True)
class Bucket:
    name: str
    expr: str  # SQL over column identifiers
    order: str  # SQL giving the bucket's natural order
    doc: str
    source: str  # the column it derives from
    unit: str  # one of UNITS
    # Filters compare `order` with the value, by this family's operators (query/filters.py): a year as
    # a number, a month as the 1st of that month, a price band by its number in `labels`.
    family: str
    labels: tuple[str, ...] = ()  # a fixed set of values, in the order `order` numbers them from 0


_PRICE_BANDS = ((0, "free"), (5, "under 5"), (10, "5 to 10"), (20, "10 to 20"), (40, "20 to 40"))
_TOP_BAND = "40 and more"
_BAND_IF = ", ".join(f"`price` {'=' if hi == 0 else '<'} {hi}, '{label}'" for hi, label in _PRICE_BANDS)
_BAND_ORDER = ", ".join(f"`price` {'=' if hi == 0 else '<'} {hi}, {i}" for i, (hi, _) in enumerate(_PRICE_BANDS))

BUCKETS = {
    b.name: b
    for b in (
        Bucket("release_year", "toYear(`release_date`)", "toYear(`release_date`)", "Year of release_date",
               "release_date", "year", "number"),
        Bucket("release_month", "formatDateTime(`release_date`, '%Y-%m')", "toStartOfMonth(`release_date`)",
               "Month of release_date, YYYY-MM", "release_date", "month", "date"),
        Bucket("price_band", f"multiIf({_BAND_IF}, '{_TOP_BAND}')", f"multiIf({_BAND_ORDER}, {len(_PRICE_BANDS)})",
               "Price band: free, under 5, 5 to 10, 10 to 20, 20 to 40, 40 and more", "price", "", "number",
               (*(label for _, label in _PRICE_BANDS), _TOP_BAND)),
    )
}


@dataclass(frozen=True)
class Metric:
    name: str
    sql: str  # over {c}, the column identifier
    families: frozenset  # filter families of the columns it applies to; empty = count (no column)
    doc: str
    unit: str = ""  # the unit of its values; empty: the unit of the column it summarises
    float_sql: str = ""  # over a float column, where it differs from `sql`
    cents_sql: str = ""  # over a float column of cents (Column.cents), where it differs from `float_sql`
    list_sql: str = ""  # over a list column's whole lists, where it differs from `sql`

    def over(self, col: Column, c: str, as_element: bool = False) -> str:
        """Its SQL over one column, `c` being that column in SQL (query/filters.column_sql); `as_element`:
        a list column that holds one element per row there (the query groups by it)."""
        if col.kind.filter == "float" and col.cents and self.cents_sql:
            return self.cents_sql.format(c=c, cents=_whole(col, f"round({c} * 100)"))
        if col.kind.filter == "float" and self.float_sql:
            return self.float_sql.format(c=c, whole_part=_whole(col, f"floor({c})"),
                                         fraction=_whole(col, f"round(({c} - floor({c})) * 1000000000000)"))
        if col.kind.filter == "list" and self.list_sql and not as_element:
            return self.list_sql.format(c=c)
        return self.sql.format(c=c)


def _whole(col: Column, value: str) -> str:
    """`value` as an Int128. Under an empty value of a nullable float the engine holds NaN (0 / 0: the
    derivation computes both branches), which toInt128 refuses: there the cast gives NULL, which sum skips."""
    if col.nullable:
        return f"accurateCastOrNull({value}, 'Int128')"
    return f"toInt128({value})"


_NUMERIC = frozenset({"number", "decimal", "float"})
# Exact, as analysts compute them: the median of an even count is the mean of the two middle values;
# p90 interpolates between ranks (numpy's and Python's "inclusive" method). Interpolating halfway is that
# mean, so the median is the inclusive quantile at 0.5: one copy of the values to partition instead of
# two (quantileExactLow + quantileExactHigh). The summary's three quantiles, engine alone, 500 MB,
# `genres=indie`, median of 15, two runs, by hand: 41.2 -> 29.2 and 32.4 -> 23.2 ms; the whole summary
# request did not change, bound by its five statements' CPU [docs/measured.md, fourteenth pass].
# A sum of floats carries binary noise, and more the larger the total (est_revenue: 232408398.00000003, and
# 15056431589.0999 for 15056431589.1 at 60,000 games): each value's whole part and its fraction (to 12
# places: under 2^53, so a fraction converts exactly) are summed apart as whole numbers, exactly (Int128: no
# overflow), and the total is rounded to 4 places, so a sum reads as it would on paper. Rounding each value
# to 4 places first, as before, let the error grow with the rows (a sum of 100 ratings was 0.0002 off).
# {whole_part} and {fraction}: the two parts as whole numbers (Metric.over).
_EXACT_FLOAT_SUM = ("ifNull(round(toFloat64(sum({whole_part})) + sum({fraction}) / 1000000000000, 4), 0)")
# A float of cents (est_revenue: rounded to 2 places) is summed as whole cents, exactly, in one sum instead of
# two, the same total; with the summary's bands counted by countIf, its overview of `genres=indie` at 500 MB
# takes 1.26-1.28x less time, of other segments 0.99-1.10x [`python bench/segments.py 500`, the table
# "overview before / as sent"]. {cents}: each value as whole cents (Metric.over).
_CENTS_SUM = "ifNull(toFloat64(sum({cents})) / 100, 0)"
# Shares, averages and quantiles to 6 decimals: at 4, a share of 0.60345 came as 0.6035, which the page's one
# decimal of a percent rounded again, to 60.4 % (60.3 is right).
DECIMALS = 6
# -OrNull: over no games (an aggregate without group_by whose filters match none) there is no average, least
# or median: NULL, which every format writes as empty (avg's NaN and min's 0 were what CSV and Parquet wrote).
_MEDIAN = f"round(quantileExactInclusiveOrNull(0.5)(toFloat64({{c}})), {DECIMALS})"
METRICS = {
    m.name: m
    for m in (
        Metric("count", "count()", frozenset(), "Number of games (of elements, when grouping by a list column)",
               "count"),
        # A sum over no values is 0, also of a column that may be empty (rating, score_rank), whose sum()
        # would be NULL where every value is empty, unlike price's 0 beside it.
        Metric("sum", "ifNull(sum({c}), 0)", _NUMERIC, "Sum (of a float column: exact to 4 decimal places)",
               float_sql=_EXACT_FLOAT_SUM, cents_sql=_CENTS_SUM),
        Metric("avg", f"round(avgOrNull({{c}}), {DECIMALS})", _NUMERIC, "Average (empty values are skipped)"),
        Metric("min", "minOrNull({c})", _NUMERIC | {"date"}, "Smallest value"),
        Metric("max", "maxOrNull({c})", _NUMERIC | {"date"}, "Largest value"),
        Metric("median", _MEDIAN, _NUMERIC, "Median, exact (the mean of the two middle values for an even count)"),
        Metric("p90", f"round(quantileExactInclusiveOrNull(0.9)(toFloat64({{c}})), {DECIMALS})", _NUMERIC,
               "90th percentile, exact (linear between ranks)"),
        Metric("uniq", "uniqExact({c})", frozenset({"number", "decimal", "float", "date", "string", "list", "bool"}),
               "Number of distinct values (of a list column: of its elements)", "count",
               list_sql="uniqExactArray({c})"),
        # Over the grouped rows: the previous row of the same group in release_year order (window `w`,
        # added by the query), counted only when it is the calendar year before.
        Metric("growth", "if(lagInFrame(toInt64(`release_year`)) OVER w = toInt64(`release_year`) - 1 AND "
               f"lagInFrame(count()) OVER w > 0, round(count() / lagInFrame(count()) OVER w - 1, {DECIMALS}), NULL)",
               frozenset(), "Change in the number of games against the year before, as a share (0.25 = +25 %); "
               "empty when that year had none. Needs release_year among group_by", "percent"),
    )
}
