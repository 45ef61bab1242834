//! The JSON schemas of the request fields, built from the constants the parsers use, so that
//! the OpenAPI document cannot promise a bound the server does not keep (or keep one it does
//! not promise). Each function is named in a `#[schema(schema_with = ...)]` or
//! `#[param(schema_with = ...)]` attribute.

use lemonade_domain::customer::{EMAIL_LEN_MAX, PHONE_LEN_MAX};
use lemonade_domain::ids::ID_LEN_MAX;
use lemonade_domain::order::LINE_QUANTITY_MAX;
use lemonade_domain::ports::{
    CursorKind, IDEMPOTENCY_KEY_LEN_MAX, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, SEQUENCE_CURSOR_DIGITS_MAX,
};
use lemonade_domain::report::UTC_OFFSET_MINUTES_MAX;
use lemonade_domain::values::{PRICE_MAX, QUANTITY_MAX, TEXT_LEN_MAX};
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, SchemaType, Type};

/// Control characters (C0, DEL, C1), which no text field takes inside it.
const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";
/// White space as Rust's `str::trim` removes it (Unicode's White_Space), spelt out: regex
/// dialects disagree on `\s`.
const SPACE: &str = r"\t\n\u000B\f\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

fn integer(min: i64, max: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min))
        .maximum(Some(max))
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// The same schema that also takes `null` (which the server reads as "left out").
fn or_null(schema: ObjectBuilder, types: Type) -> Object {
    schema.schema_type(SchemaType::Array(vec![types, Type::Null])).build()
}

/// A quantity of stock: 1 to `QUANTITY_MAX`.
pub fn quantity() -> Object {
    integer(1, QUANTITY_MAX as i64).build()
}

/// Units of one product on one order line: 1 to `LINE_QUANTITY_MAX`.
pub fn line_quantity() -> Object {
    integer(1, LINE_QUANTITY_MAX).build()
}

/// A stock level that may be zero (a count, a reorder level): 0 to `QUANTITY_MAX`.
pub fn level() -> Object {
    integer(0, QUANTITY_MAX as i64).build()
}

/// [`level`], or null for the default 0.
pub fn level_or_null() -> Object {
    or_null(integer(0, QUANTITY_MAX as i64), Type::Integer)
}

/// A price in minor units: 0 to `PRICE_MAX`.
pub fn price() -> Object {
    integer(0, PRICE_MAX).build()
}

/// The pattern of a name: some character that is neither white space nor a control
/// character, and no control character but in the white space trimmed off its ends.
fn name_pattern() -> String {
    format!(r"^[{SPACE}]*[^{CONTROL}]*[^{SPACE}{CONTROL}][^{CONTROL}]*[{SPACE}]*$")
}

/// A name: 1 to `TEXT_LEN_MAX` characters, not blank, no control characters.
pub fn name() -> Object {
    string()
        .min_length(Some(1))
        .max_length(Some(TEXT_LEN_MAX))
        .pattern(Some(name_pattern()))
        .build()
}

/// A free note: at most `TEXT_LEN_MAX` characters without control characters; blank means
/// none.
pub fn note() -> Object {
    or_null(
        string()
            .max_length(Some(TEXT_LEN_MAX))
            .pattern(Some(format!("^[{SPACE}]*[^{CONTROL}]*[{SPACE}]*$"))),
        Type::String,
    )
}

fn id_pattern(min: usize) -> String {
    format!("^[0-9A-Za-z_-]{{{min},{ID_LEN_MAX}}}$")
}

/// An id: 1 to `ID_LEN_MAX` characters of `0-9 A-Z a-z - _`.
pub fn id() -> Object {
    string()
        .min_length(Some(1))
        .max_length(Some(ID_LEN_MAX))
        .pattern(Some(id_pattern(1)))
        .build()
}

/// [`id`], or null for none.
pub fn id_or_null() -> Object {
    or_null(
        string()
            .min_length(Some(1))
            .max_length(Some(ID_LEN_MAX))
            .pattern(Some(id_pattern(1))),
        Type::String,
    )
}

/// An id in a query filter; empty means no filter.
pub fn id_filter() -> Object {
    string()
        .max_length(Some(ID_LEN_MAX))
        .pattern(Some(id_pattern(0)))
        .build()
}

/// A page's `cursor` in a list whose cursors are of `kind`: exactly what
/// [`lemonade_domain::ports::PageRequest::parse`] takes; empty means the first page.
pub fn cursor(kind: CursorKind) -> Object {
    let (max, pattern, what) = match kind {
        CursorKind::Id => (ID_LEN_MAX, id_pattern(0), "an id"),
        CursorKind::Sequence => (
            SEQUENCE_CURSOR_DIGITS_MAX,
            format!("^[0-9]{{0,{SEQUENCE_CURSOR_DIGITS_MAX}}}$"),
            "a sequence number",
        ),
    };
    string()
        .max_length(Some(max))
        .pattern(Some(pattern))
        .description(Some(format!(
            "`next_cursor` of the previous page ({what}); empty or absent for the first page."
        )))
        .build()
}

/// A page's `limit`: 1 to `PAGE_LIMIT_MAX`, default `PAGE_LIMIT_DEFAULT`.
pub fn page_limit() -> Object {
    integer(1, i64::from(PAGE_LIMIT_MAX))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .default(Some(PAGE_LIMIT_DEFAULT.into()))
        .build()
}

/// An `Idempotency-Key`: 1 to `IDEMPOTENCY_KEY_LEN_MAX` printable ASCII characters.
pub fn idempotency_key() -> Object {
    string()
        .min_length(Some(1))
        .max_length(Some(IDEMPOTENCY_KEY_LEN_MAX))
        .pattern(Some(format!("^[!-~]{{1,{IDEMPOTENCY_KEY_LEN_MAX}}}$")))
        .build()
}

/// One value of a fixed set.
fn one_of(values: &[&str]) -> ObjectBuilder {
    string().enum_values(Some(values.iter().copied()))
}

/// An ingredient's unit.
pub fn unit() -> Object {
    one_of(&["g", "ml", "piece"]).build()
}

/// The `status` filter of the order list; empty means any.
pub fn order_status_filter() -> Object {
    one_of(&["", "pending", "confirmed", "failed", "cancelled"]).build()
}

/// A report's `by`.
pub fn report_by() -> Object {
    one_of(&["day", "product"]).default(Some("day".into())).build()
}

/// A report's `format`.
pub fn report_format() -> Object {
    one_of(&["json", "csv"]).build()
}

/// A day, `YYYY-MM-DD` with four digits of year.
pub fn date() -> Object {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .pattern(Some(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
        .build()
}

/// A shop's offset from UTC in minutes.
pub fn utc_offset_minutes() -> Object {
    integer(-i64::from(UTC_OFFSET_MINUTES_MAX), i64::from(UTC_OFFSET_MINUTES_MAX))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .default(Some(0.into()))
        .build()
}

/// An email address (`local@domain.tld`, at most 254 characters), or blank to have none.
pub fn email() -> Object {
    let no = format!(r"{SPACE}@{CONTROL}");
    or_null(
        string().max_length(Some(EMAIL_LEN_MAX)).pattern(Some(format!(
            r"^[{SPACE}]*$|^[{SPACE}]*[^{no}]+@[^{no}.][^{no}]*\.[^{no}]*[^{no}.][{SPACE}]*$"
        ))),
        Type::String,
    )
}

/// A phone number (digits, spaces and `+ - ( ) .`, at least 3 digits, at most 32
/// characters), or empty to have none.
pub fn phone() -> Object {
    or_null(
        string().max_length(Some(PHONE_LEN_MAX)).pattern(Some(format!(
            r"^[{SPACE}]*$|^[{SPACE}]*[ +().-]*(?:[0-9][ +().-]*){{3,}}[{SPACE}]*$"
        ))),
        Type::String,
    )
}

/// A customer search: at most `SEARCH_LEN_MAX` characters as sent.
pub fn search() -> Object {
    string().max_length(Some(SEARCH_LEN_MAX)).build()
}

/// The seconds of a `Retry-After` header.
pub fn retry_after() -> Object {
    integer(0, 3600).build()
}

/// The `WWW-Authenticate` header of a 401.
pub fn www_authenticate() -> Object {
    one_of(&["Bearer"]).build()
}

/// Longest customer search, in characters as sent.
pub const SEARCH_LEN_MAX: usize = 100;
