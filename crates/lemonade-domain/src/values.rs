//! Small value types with their limits. Integers only: money in minor currency units, stock in
//! the ingredient's unit (g, ml or piece). Floats never appear.

use serde::{Deserialize, Serialize};

/// Largest quantity one request may name (a tonne of sugar in grams): anything larger is a typo.
pub const QUANTITY_MAX: u64 = 1_000_000_000;
/// Largest price of one product, in minor units.
pub const PRICE_MAX: i64 = 100_000_000;
/// Longest name or note, in characters.
pub const TEXT_LEN_MAX: usize = 200;

/// A strictly positive amount, at most [`QUANTITY_MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quantity(u64);

impl Quantity {
    pub fn new(raw: i64) -> Result<Self, String> {
        if raw <= 0 {
            Err("must be a whole number greater than zero".into())
        } else if raw as u64 > QUANTITY_MAX {
            Err(format!("must be at most {QUANTITY_MAX}"))
        } else {
            Ok(Self(raw as u64))
        }
    }
    pub fn get(self) -> u64 {
        self.0
    }
}

/// An amount of money in minor currency units (cents). Never negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn new(raw: i64) -> Result<Self, String> {
        if raw < 0 {
            Err("must not be negative".into())
        } else if raw > PRICE_MAX {
            Err(format!("must be at most {PRICE_MAX}"))
        } else {
            Ok(Self(raw))
        }
    }
    /// Trusted construction from storage, where the schema already enforces the range.
    pub fn from_stored(raw: i64) -> Self {
        assert!(raw >= 0, "stored money is never negative");
        Self(raw)
    }
    pub fn minor(self) -> i64 {
        self.0
    }
    /// `self * n`, or `None` on overflow.
    pub fn times(self, n: u64) -> Option<Money> {
        i64::try_from(n).ok().and_then(|n| self.0.checked_mul(n)).map(Money)
    }
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }
}

/// The unit an ingredient is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    G,
    Ml,
    Piece,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::G => "g",
            Unit::Ml => "ml",
            Unit::Piece => "piece",
        }
    }
    pub fn parse(raw: &str) -> Option<Unit> {
        match raw {
            "g" => Some(Unit::G),
            "ml" => Some(Unit::Ml),
            "piece" => Some(Unit::Piece),
            _ => None,
        }
    }
}

/// A moment, in milliseconds since the Unix epoch, read from a [`crate::ports::Clock`].
/// Clients see it as RFC 3339 in UTC (`2026-11-25T20:37:31.123Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, utoipa::ToSchema)]
#[schema(value_type = String, format = DateTime)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => t
                .format(&time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                ))
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
    pub fn parse_rfc3339(raw: &str) -> Option<Self> {
        let t = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok().map(Timestamp)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&raw).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 timestamp"))
    }
}

/// A name: its display form ([`crate::text::display_form`]: NFC, one kind of space, nothing
/// invisible, trimmed), with something visible in it (a name of only blanks, zero-width or
/// blank-looking characters is refused like an empty one). At most [`TEXT_LEN_MAX`]
/// characters as sent, white space included: a rule a client (and the OpenAPI document's
/// `maxLength`) can state without knowing what normalising removes. Two names are the same
/// name when their [`crate::text::name_key`]s are equal.
pub fn parse_name(raw: &str) -> Result<String, String> {
    check_length(raw)?;
    let text = crate::text::display_form(raw)?;
    if crate::text::is_blank(&text) {
        return Err("must not be empty or blank".into());
    }
    Ok(text)
}

/// A note: like [`parse_name`] but may be empty; a note with nothing visible in it is empty.
pub fn parse_note(raw: &str) -> Result<String, String> {
    check_length(raw)?;
    let text = crate::text::display_form(raw)?;
    if crate::text::is_blank(&text) {
        return Ok(String::new());
    }
    Ok(text)
}

/// At most [`TEXT_LEN_MAX`] characters (Unicode scalar values) as sent.
fn check_length(raw: &str) -> Result<(), String> {
    if raw.chars().count() > TEXT_LEN_MAX {
        return Err(format!("must be at most {TEXT_LEN_MAX} characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_rejects_zero_negative_and_absurd() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(-3).is_err());
        assert!(Quantity::new(QUANTITY_MAX as i64 + 1).is_err());
        assert_eq!(Quantity::new(7).unwrap().get(), 7);
    }

    #[test]
    fn money_multiplication_detects_overflow() {
        assert_eq!(Money::new(250).unwrap().times(4), Some(Money(1000)));
        assert_eq!(Money(i64::MAX / 2).times(3), None);
    }

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        let t = Timestamp(1_764_103_051_123);
        assert_eq!(t.to_rfc3339(), "2025-11-25T20:37:31.123Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339()), Some(t));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Lemons ").unwrap(), "Lemons");
        assert!(parse_name("   ").is_err());
        assert!(parse_name(&"x".repeat(TEXT_LEN_MAX + 1)).is_err());
        assert!(parse_name("a\u{7}b").is_err());
    }

    #[test]
    fn a_name_with_nothing_visible_is_refused_like_an_empty_one() {
        for blank in ["\u{200b}", "\u{2800}", "\u{a0}\u{3000}", "\u{3164}", "\u{feff}\u{200d}"] {
            assert_eq!(parse_name(blank), parse_name(""), "{blank:?}");
        }
        assert_eq!(parse_note("\u{2800}").unwrap(), "");
    }

    #[test]
    fn names_are_stored_in_their_display_form() {
        assert_eq!(parse_name("Cafe\u{301}\u{200b}\u{a0}T").unwrap(), "Café T");
        assert_eq!(parse_name("👩\u{200d}🍳").unwrap(), "👩\u{200d}🍳");
        assert_eq!(parse_note(" two\n lines ").unwrap(), "two lines");
    }

    #[test]
    fn the_length_limit_counts_the_characters_as_sent() {
        // What JSON Schema's `maxLength` counts, so the OpenAPI document can state the rule.
        let decomposed = "e\u{301}".repeat(TEXT_LEN_MAX / 2);
        assert_eq!(parse_name(&decomposed).unwrap().chars().count(), TEXT_LEN_MAX / 2);
        assert!(parse_name(&"e\u{301}".repeat(TEXT_LEN_MAX / 2 + 1)).is_err());
        assert!(parse_name(&format!("{} ", "x".repeat(TEXT_LEN_MAX))).is_err());
    }
}
