//! The JSON schemas of the request fields, built from the constants the parsers use, so that
//! the OpenAPI document cannot promise a bound the server does not keep (or keep one it does
//! not promise). Each function is named in a `#[schema(schema_with = ...)]` or
//! `#[param(schema_with = ...)]` attribute.
//!
//! Text fields (names, notes, emails, phone numbers) take a text by what its characters are
//! (`lemonade_domain::text`: refused, visible, ignorable, white space; a phone number's
//! symbols). Their patterns are built from those very functions, by walking every code point
//! once into ranges ([`CLASSES`]), and kept once each under `components/schemas` ([`NAMED`]),
//! because they are kilobytes long; a field names them by `$ref`. The tests below hold each
//! pattern against its parser.
//!
//! The patterns are written for both regex dialects that read them: ECMA-262 (JSON Schema's,
//! with the `u` flag) and Python's `re` (schemathesis, through hypothesis-jsonschema). A code
//! point of the Basic Multilingual Plane is written `\uXXXX` (which both read, and the Rust
//! `regex` crate too); one above it is written as itself (neither dialect shares an escape for
//! it). No `\s`, `\d` or `\w`: the dialects disagree on them.

use std::sync::LazyLock;

use lemonade_domain::customer::{
    EMAIL_LEN_MAX, PHONE_DIGITS_MIN, PHONE_LEN_MAX, PHONE_SIGNS, email_char, phone_symbol,
};
use lemonade_domain::ids::ID_LEN_MAX;
use lemonade_domain::order::LINE_QUANTITY_MAX;
use lemonade_domain::ports::{
    CursorKind, IDEMPOTENCY_KEY_LEN_MAX, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, SEQUENCE_CURSOR_DIGITS_MAX,
};
use lemonade_domain::report::UTC_OFFSET_MINUTES_MAX;
use lemonade_domain::text::{is_ignorable, is_refused, is_space, is_visible};
use lemonade_domain::values::{PRICE_MAX, QUANTITY_MAX, TEXT_LEN_MAX};
use utoipa::openapi::Ref;
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, SchemaFormat, SchemaType, Type};

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

/// A set of characters: its ranges of code points, ascending, and the same as the inside of
/// a regex character class (see the module's doc on escapes).
pub struct CharSet {
    pub ranges: Vec<(char, char)>,
    pub class: String,
}

impl CharSet {
    fn new(ranges: Vec<(char, char)>) -> Self {
        let mut class = String::new();
        for &(first, last) in &ranges {
            escape(&mut class, first);
            if last != first {
                class.push('-');
                escape(&mut class, last);
            }
        }
        Self { ranges, class }
    }
}

/// `c` in a character class: `\uXXXX` in the Basic Multilingual Plane, itself above it.
fn escape(out: &mut String, c: char) {
    if c as u32 <= 0xFFFF {
        out.push_str(&format!("\\u{:04X}", c as u32));
    } else {
        out.push(c);
    }
}

/// The character sets the text fields' patterns are made of.
pub struct Classes {
    /// [`is_refused`]: control characters that are not white space, private-use and unassigned
    /// code points.
    pub refused: CharSet,
    /// [`is_space`]: white space (Unicode's `White_Space`, as `char::is_whitespace`) and blank
    /// glyphs, which the display form makes one space.
    pub space: CharSet,
    /// [`is_ignorable`]: invisible characters the display form drops.
    pub ignorable: CharSet,
    /// [`is_visible`]: a text with none of these is blank.
    pub visible: CharSet,
    /// Neither visible nor refused: what a blank text is made of.
    pub blank: CharSet,
    /// Characters a phone number reads as a digit ([`phone_symbol`]).
    pub phone_digit: CharSet,
    /// Characters a phone number reads as one of [`PHONE_SIGNS`] ([`phone_symbol`]).
    pub phone_sign: CharSet,
    /// Characters an email reads as `@` ([`email_char`]: `@`, `＠`, `﹫`).
    pub email_at: CharSet,
    /// Characters an email reads as `.` ([`email_char`]: `.`, `．`, ...).
    pub email_dot: CharSet,
    /// Characters an email refuses ([`email_char`]: `‥`, `⒈`, `´`, ...), besides [`is_refused`].
    pub email_refused: CharSet,
}

/// The character sets, from one walk over every code point (surrogates are no characters, so
/// no range spans them). About 3 s in a debug build, a tenth of it optimised; once a process.
pub static CLASSES: LazyLock<Classes> = LazyLock::new(|| {
    let mut sets: [Vec<(char, char)>; 10] = Default::default();
    for c in (0..=char::MAX as u32).filter_map(char::from_u32) {
        let (refused, visible, symbol) = (is_refused(c), is_visible(c), phone_symbol(c));
        // Most characters are themselves in an email; only those that are not need a look.
        let email = if c.is_ascii() {
            Some(c.to_string())
        } else {
            email_char(c)
        };
        let members = [
            refused,
            is_space(c),
            is_ignorable(c),
            visible,
            !visible && !refused,
            symbol.is_some_and(|s| s.is_ascii_digit()),
            symbol.is_some_and(|s| PHONE_SIGNS.contains(s)),
            email.as_deref() == Some("@"),
            email.as_deref() == Some("."),
            email.is_none(),
        ];
        for (ranges, member) in sets.iter_mut().zip(members) {
            if !member {
                continue;
            }
            match ranges.last_mut() {
                Some((_, last)) if *last as u32 + 1 == c as u32 => *last = c,
                _ => ranges.push((c, c)),
            }
        }
    }
    let [
        refused,
        space,
        ignorable,
        visible,
        blank,
        phone_digit,
        phone_sign,
        email_at,
        email_dot,
        email_refused,
    ] = sets.map(CharSet::new);
    Classes {
        refused,
        space,
        ignorable,
        visible,
        blank,
        phone_digit,
        phone_sign,
        email_at,
        email_dot,
        email_refused,
    }
});

/// The body of a character class that takes every character in none of `sets`: their
/// complement, written out. No pattern holds a negated class (`[^...]`): the `regex` crate
/// (regex-syntax 0.8.12) negates a class that holds both U+D7FF and U+E000, which it merges
/// across the surrogates into one range, into one that takes everything, and the refused
/// characters hold both.
fn none_of(sets: &[&CharSet]) -> String {
    let mut ranges: Vec<(u32, u32)> = sets
        .iter()
        .flat_map(|set| set.ranges.iter().map(|&(a, b)| (u32::from(a), u32::from(b))))
        .collect();
    ranges.sort_unstable();
    let mut outside = Vec::new();
    let mut push = |first: u32, last: u32| {
        // Around the surrogates, which are no characters.
        for (lo, hi) in [(first, last.min(0xD7FF)), (first.max(0xE000), last)] {
            if let (Some(lo), Some(hi)) = (char::from_u32(lo), char::from_u32(hi))
                && lo <= hi
            {
                outside.push((lo, hi));
            }
        }
    };
    let mut next = 0;
    for (first, last) in ranges {
        if first > next {
            push(next, first - 1);
        }
        next = next.max(last + 1);
    }
    if next <= u32::from(char::MAX) {
        push(next, u32::from(char::MAX));
    }
    CharSet::new(outside).class
}

/// The pattern of a name (`values::parse_name`): a visible character, and no refused one.
pub fn name_pattern() -> String {
    let Classes { refused, visible, .. } = &*CLASSES;
    let (taken, v) = (none_of(&[refused]), &visible.class);
    format!("^[{taken}]*[{v}][{taken}]*$")
}

/// The pattern of a note (`values::parse_note`): no refused character.
pub fn note_pattern() -> String {
    let taken = none_of(&[&CLASSES.refused]);
    format!("^[{taken}]*$")
}

/// The pattern of an email (`customer::parse_email`, which reads each character as
/// `customer::email_char` does): blank (nothing visible: none), or white space and invisible
/// characters around `local@domain`, where neither part holds white space or a second `@`,
/// `local` starts with a character that is not invisible, and `domain` holds a `.` and starts
/// and ends (invisible characters aside) with a character that is not a `.`. What an email
/// refuses is refused anywhere; `@` and `.` are every character read as one.
pub fn email_pattern() -> String {
    let c = &*CLASSES;
    let (w, i, blank) = (&c.space.class, &c.ignorable.class, &c.blank.class);
    let (at, dot) = (&c.email_at.class, &c.email_dot.class);
    let refused = [&c.refused, &c.email_refused, &c.space, &c.email_at];
    let part = format!("[{}]", none_of(&refused));
    let seen = format!("[{}]", none_of(&[&refused[..], &[&c.ignorable]].concat()));
    let seen_not_dot = format!("[{}]", none_of(&[&refused[..], &[&c.ignorable, &c.email_dot]].concat()));
    format!(
        "^(?:[{blank}]*|[{w}{i}]*{seen}{part}*[{at}][{i}]*{seen_not_dot}{part}*[{dot}]{part}*{seen_not_dot}[{w}{i}]*)$"
    )
}

/// The pattern of a phone number (`customer::parse_phone`): blank (none), or its symbols,
/// white space and invisible characters, with at least `PHONE_DIGITS_MIN` digits.
pub fn phone_pattern() -> String {
    let c = &*CLASSES;
    let (w, i, blank) = (&c.space.class, &c.ignorable.class, &c.blank.class);
    let (d, s) = (&c.phone_digit.class, &c.phone_sign.class);
    format!("^(?:[{blank}]*|[{w}{i}{s}]*(?:[{d}][{w}{i}{s}]*){{{PHONE_DIGITS_MIN},}})$")
}

/// A name: 1 to `TEXT_LEN_MAX` characters as sent, not blank, no refused character.
fn name_schema() -> Object {
    string()
        .min_length(Some(1))
        .max_length(Some(TEXT_LEN_MAX))
        .pattern(Some(name_pattern()))
        .description(Some(format!(
            "A name: at most {TEXT_LEN_MAX} characters as sent, at least one of them visible (a letter, digit, punctuation or symbol: not only white space, invisible characters such as U+200B or marks), and no control character but white space, and no private-use (U+E000..U+F8FF, planes 15 and 16) or unassigned code point, which devices show each in their own way or as one empty box. Stored as a person reads it: Unicode NFC, every run of white space and blank glyphs (U+2800, U+1D159) one space, trimmed, invisible characters removed (but for those that shape a recommended emoji or a word), punctuation as typed. Two names that read the same are the same name: case, compatibility forms (Unicode's compatibility caseless match: full-width letters, ligatures, super- and subscripts, circled digits, so 'm²' is 'm2', 'H₂O' is 'H2O' and '™' is 'TM'), look-alike punctuation and signs (’ and ', – and -, “ and \", ⁄ and /, ∗ and *, ⋅ and ·: a sign of no script that looks like a keyboard sign is that sign) and look-alike letters of other scripts (Unicode's confusables, UTS #39) do not make another name. Letters of other scripts are read a word at a time: a word whose letters all look like Latin letters (Cyrillic, Greek or any script: 'Мix', 'Сок', 'Pах', 'ΝΕΟ') is read as those Latin letters; else a word whose letters all look like Cyrillic, Greek, Han, Hiragana or Katakana letters (the first in that order) is read in that script (Greek 'ΠΙΤΑ' is Cyrillic 'ПІТА', Katakana 'ロ' is Han '口'); any other word that mixes scripts is read in the one of its scripts that can write most of it ('Cyп' is the Cyrillic 'Суп'), on a tie the script of most of its letters (Latin on a tie); any other word is read as written, and look-alikes within one script ('rn' and 'm', 'l' and 'I') are different letters. A letter whose small and capital forms look like two different Latin letters (Greek Ν and ν: N and v) is read in the case it is written in; a letter with a stroke or a bar (Б, θ, ћ) is not the bare letter; marks that capitals do not write (the dot of the Turkish İ, the Greek tonos) do not make another name."
        )))
        .build()
}

/// A free note: at most `TEXT_LEN_MAX` characters as sent, no refused character; blank
/// means none.
fn note_schema() -> Object {
    or_null(
        string().max_length(Some(TEXT_LEN_MAX)).pattern(Some(note_pattern())).description(Some(format!(
            "A note: at most {TEXT_LEN_MAX} characters as sent, no control character but white space, and no private-use (U+E000..U+F8FF, planes 15 and 16) or unassigned code point, which devices show each in their own way or as one empty box. Stored like a name; one with nothing visible in it is none."
        ))),
        Type::String,
    )
}

/// An email address, or blank (or null) to have none.
fn email_schema() -> Object {
    or_null(
        string()
            .max_length(Some(EMAIL_LEN_MAX))
            .pattern(Some(email_pattern()))
            .description(Some(format!(
                "An email address `local@domain`: at most {EMAIL_LEN_MAX} characters as sent, one `@` with something before it, a `.` in the domain but not at either end of it, no white space inside (invisible characters are not counted as something), no control, private-use or unassigned character. Each character is read in its compatibility form (NFKC: full-width `Ａ`, `＠`, `．` are `A`, `@`, `.`); one whose compatibility form is several characters holding `@`, `.` or white space (`‥`, `⒈`) is refused. Blank (nothing visible), empty or null: none. Stored like a name, the domain in lower case."
            ))),
        Type::String,
    )
}

/// A phone number, or blank (or null) to have none.
fn phone_schema() -> Object {
    or_null(
        string()
            .max_length(Some(PHONE_LEN_MAX))
            .pattern(Some(phone_pattern()))
            .description(Some(format!(
                "A phone number: at most {PHONE_LEN_MAX} characters as sent, at least {PHONE_DIGITS_MIN} digits, and white space (blank glyphs such as U+2800 count as one) and `{PHONE_SIGNS}` only; a character that is one of these in its compatibility form (full-width `５`, `＋`) counts as it; invisible characters are dropped. Blank (nothing visible), empty or null: none. Stored in ASCII, every run of white space one space."
            ))),
        Type::String,
    )
}

/// A schema's name and the function that makes it.
pub type NamedSchema = (&'static str, fn() -> Object);

/// The schemas kept once under `components/schemas`, by name.
pub const NAMED: &[NamedSchema] = &[
    ("Name", name_schema),
    ("Note", note_schema),
    ("Email", email_schema),
    ("Phone", phone_schema),
];

/// A name ([`NAMED`] `Name`).
pub fn name() -> Ref {
    Ref::from_schema_name("Name")
}

/// A note ([`NAMED`] `Note`).
pub fn note() -> Ref {
    Ref::from_schema_name("Note")
}

/// An email address ([`NAMED`] `Email`).
pub fn email() -> Ref {
    Ref::from_schema_name("Email")
}

/// A phone number ([`NAMED`] `Phone`).
pub fn phone() -> Ref {
    Ref::from_schema_name("Phone")
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
            "`next_cursor` of the previous page ({what}); empty or absent for the first page. \
             A position in the list's order: any value of this pattern is one, whether or not an item has it."
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

#[cfg(test)]
mod tests {
    use lemonade_domain::customer::{parse_email, parse_phone};
    use lemonade_domain::values::{parse_name, parse_note};
    use proptest::prelude::*;
    use regex::Regex;

    use super::*;

    /// A text field as the document states it (its pattern, read by the `regex` crate, which
    /// also proves the pattern's syntax, and its `maxLength`) and as the server takes it.
    struct Field {
        name: &'static str,
        pattern: Regex,
        len_max: usize,
        takes: fn(&str) -> bool,
    }

    static FIELDS: LazyLock<[Field; 4]> = LazyLock::new(|| {
        let field = |name, pattern: String, len_max, takes| Field {
            name,
            pattern: Regex::new(&pattern).unwrap_or_else(|e| panic!("{name}: {e}")),
            len_max,
            takes,
        };
        [
            field("name", name_pattern(), TEXT_LEN_MAX, |s| parse_name(s).is_ok()),
            field("note", note_pattern(), TEXT_LEN_MAX, |s| parse_note(s).is_ok()),
            field("email", email_pattern(), EMAIL_LEN_MAX, |s| parse_email(s).is_ok()),
            field("phone", phone_pattern(), PHONE_LEN_MAX, |s| parse_phone(s).is_ok()),
        ]
    });

    /// No pattern holds a negated class (see [`none_of`]), and the case that the `regex`
    /// crate gets wrong in one is read right in the pattern: a private-use character beside
    /// an unassigned one at the end of the Basic Multilingual Plane's letters.
    #[test]
    fn no_pattern_holds_a_negated_class() {
        for field in FIELDS.iter() {
            assert!(!field.pattern.as_str().contains("[^"), "{}", field.name);
            assert!(!field.pattern.is_match("\u{d7ff}\u{e000}x"), "{}", field.name);
        }
    }

    /// Every field's schema takes `raw` exactly when its parser does.
    fn agree(raw: &str) -> Result<(), String> {
        for field in FIELDS.iter() {
            let documented = field.pattern.is_match(raw) && raw.chars().count() <= field.len_max;
            if documented != (field.takes)(raw) {
                return Err(format!(
                    "{}: the schema says {documented}, the parser {} for {raw:?}",
                    field.name, !documented
                ));
            }
        }
        Ok(())
    }

    /// What the rules turn on: letters (composed or not, astral), marks with and without a
    /// base, white space that is a control (tab, form feed) and that is not, controls that
    /// are refused, and U+001C..U+001F (white space to Python's `str.isspace`, not to
    /// Unicode), ignorable characters (zero-width, bidi, joiners, variation selectors, tags,
    /// Hangul fillers), blank glyphs, a prepended mark (U+0600, whose grapheme cluster takes
    /// a space), emoji sequences, private use, unassigned and noncharacters, `@` and `.`,
    /// digits and signs of every width, and characters a compatibility form makes several of.
    #[rustfmt::skip]
    const PIECES: &[&str] = &[
        "a", "Z", "É", "e\u{301}", "ß", "ǅ", "ﬁ", "Ｔ", "¨", "𝒜", "𐐀", "𠀀", "葛", "ی", "خ", "ل", "क", "ष",
        "\u{301}", "\u{308}", "\u{94d}", "\u{20e3}", "\u{34f}", "\u{1d165}",
        "\t", "\n", "\r", "\u{b}", "\u{c}", "\u{85}", " ", "\u{a0}", "\u{1680}", "\u{2004}", "\u{2028}",
        "\u{202f}", "\u{3000}",
        "\u{0}", "\u{7}", "\u{1c}", "\u{1f}", "\u{7f}", "\u{90}",
        "\u{200b}", "\u{200c}", "\u{200d}", "\u{200e}", "\u{202e}", "\u{2060}", "\u{feff}", "\u{ad}", "\u{180e}",
        "\u{fe00}", "\u{fe0f}", "\u{e0100}", "\u{e0067}", "\u{e007f}", "\u{3164}", "\u{115f}", "\u{1bca0}",
        "\u{2800}", "\u{1d159}", "\u{600}", "\u{6dd}",
        "👩\u{200d}🍳", "☕\u{fe0f}", "1\u{fe0f}\u{20e3}", "🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}",
        "🇬🇧", "👍🏽", "🍋",
        "\u{e000}", "\u{378}", "\u{ffff}", "\u{10ffff}", "\u{f0000}",
        "@", "@", ".", ".", "..", "＠", "．", "co", "b",
        "0", "1", "2", "9", "５", "⁵", "①", "𝟏", "⑩", "⑴", "⒈", "…", "‥", "+", "＋", "-", "−", "(", ")", "（", "⁽",
        "Ａ", "ａ", "﹫", "﹒", "․", "ﬁ", "´", "ﾞ", "’", "–",
    ];

    fn pieces(count: std::ops::Range<usize>) -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES), count).prop_map(|p| p.concat())
    }

    /// A text shaped like an email, made of [`PIECES`] around an `@` and a `.`.
    /// (Its `@` and `.` of any width.)
    fn email_like() -> impl Strategy<Value = String> {
        let at = prop::sample::select(&["@", "＠", "﹫"][..]);
        let dot = prop::sample::select(&[".", "．", "﹒", "․"][..]);
        (
            pieces(0..3),
            pieces(0..3),
            pieces(0..3),
            pieces(0..3),
            pieces(0..3),
            at,
            dot,
        )
            .prop_map(|(a, b, c, d, e, at, dot)| format!("{a}x{b}{at}{c}y{dot}{d}z{e}"))
    }

    /// A text shaped like a phone number: mostly digits and signs of every width.
    fn phone_like() -> impl Strategy<Value = String> {
        let digits = prop::sample::select(&["1", "2", "５", "⁵", "①", "𝟏", " ", "-", "+", "(", ")", "."][..]);
        prop::collection::vec(
            prop::strategy::Union::new_weighted(vec![(4, digits.boxed()), (1, prop::sample::select(PIECES).boxed())]),
            0..12,
        )
        .prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_patterns_take_arbitrary_text_exactly_when_the_parsers_do(raw in prop::collection::vec(any::<char>(), 0..40)) {
            let raw: String = raw.into_iter().collect();
            agree(&raw).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn the_patterns_take_text_of_interesting_characters_exactly_when_the_parsers_do(raw in pieces(0..14)) {
            agree(&raw).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn the_email_pattern_takes_what_parse_email_does(raw in email_like()) {
            agree(&raw).map_err(TestCaseError::fail)?;
        }

        #[test]
        fn the_phone_pattern_takes_what_parse_phone_does(raw in phone_like()) {
            agree(&raw).map_err(TestCaseError::fail)?;
        }
    }

    /// Each field's length limit, at and past it, with white space and decomposed letters
    /// (`maxLength` counts characters as sent).
    #[test]
    fn the_patterns_and_the_parsers_agree_at_the_length_limits() {
        for len in [TEXT_LEN_MAX, EMAIL_LEN_MAX, PHONE_LEN_MAX] {
            for extra in [0, 1] {
                let n = len + extra;
                for raw in [
                    "x".repeat(n),
                    format!("{} ", "e\u{301}".repeat(n / 2)),
                    format!("a@b.{}", "c".repeat(n - 4)),
                    "1".repeat(n),
                    format!("{}1", " ".repeat(n - 1)),
                ] {
                    agree(&raw).unwrap();
                }
            }
        }
    }

    /// Every edge of every character set, in the places a field's rule reads it: where a
    /// pattern and a parser could part, a set's edge is where they part first.
    #[test]
    fn the_patterns_and_the_parsers_agree_on_every_edge_of_every_character_set() {
        let c = &*CLASSES;
        let sets = [
            &c.refused,
            &c.space,
            &c.ignorable,
            &c.visible,
            &c.blank,
            &c.phone_digit,
            &c.phone_sign,
            &c.email_at,
            &c.email_dot,
            &c.email_refused,
        ];
        let edges = sets
            .iter()
            .flat_map(|set| set.ranges.iter())
            .flat_map(|&(first, last)| {
                [
                    first as u32 - u32::from(first > '\0'),
                    first as u32,
                    last as u32,
                    last as u32 + 1,
                ]
            })
            .filter_map(char::from_u32);
        let mut checked = 0;
        for e in edges {
            for raw in [
                format!("{e}"),
                format!("a{e}"),
                format!("{e}a"),
                format!(" {e} "),
                format!("a{e}@b.co"),
                format!("{e}a@b.co"),
                format!("a@{e}b.co"),
                format!("a@{e}.b.co"),
                format!("a@b.co{e}"),
                format!("a@b.co.{e}"),
                format!("a@b{e}co"),
                // U+0600 takes the space after it into its grapheme cluster.
                format!("a@b.co\u{600} {e}"),
                format!("12{e}3"),
                format!("{e}{e}{e}"),
            ] {
                agree(&raw).unwrap();
                checked += 1;
            }
        }
        assert!(checked > 10_000, "{checked}");
    }
}
