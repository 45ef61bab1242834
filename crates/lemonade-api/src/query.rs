//! Reading a query string as strictly as a body: every parameter must be one the endpoint
//! takes, given once, and text once decoded. Each fault is recorded under the parameter's
//! name and reading goes on, so that a client hears of all of them (and of the values' own
//! faults, found by the handler's parsers) in one 422.
//!
//! The string is decoded as an HTML form would send it (`application/x-www-form-urlencoded`):
//! pairs split on `&` (empty ones skipped), the name from the value on the first `=`, `+` a
//! space, `%XX` a byte. Values are text; what a value means (a whole number, a date, a
//! cursor) is for the handler's parsers to say.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use lemonade_domain::error::FieldErrors;

/// The error of a parameter the endpoint does not take.
pub const UNKNOWN: &str = "is not a parameter of this request";
/// The error of a parameter given twice or more: which one was meant cannot be told.
pub const REPEATED: &str = "given more than once";
/// The error of a parameter whose name or value is not UTF-8 once percent-decoded.
pub const NOT_TEXT: &str = "must be UTF-8 text once percent-decoded";
/// The error of a pair with an empty name (`?=5`).
const NAMELESS: &str = "a query parameter needs a name";

/// One part of a pair, decoded; `None` when the bytes it stands for are not UTF-8.
fn decode(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Reads the query string `raw` (without its `?`) of an endpoint that takes the parameters
/// `known`: the value of each known parameter given once. Each unknown, repeated or
/// undecodable one is recorded in `errors` (once, in the order of the query) and left out.
pub fn read(raw: &str, known: &[&str], errors: &mut FieldErrors) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    // Names already reported, so that a name given three times is reported once.
    let mut reported = BTreeSet::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(name) = decode(raw_name) else {
            // It cannot be a name the endpoint takes; name it as well as it can be named.
            let shown = percent_encoding::percent_decode_str(raw_name)
                .decode_utf8_lossy()
                .into_owned();
            if reported.insert(shown.clone()) {
                errors.push(shown, NOT_TEXT);
            }
            continue;
        };
        if reported.contains(&name) {
            continue;
        }
        if name.is_empty() {
            reported.insert(name);
            errors.push("", NAMELESS);
        } else if !known.contains(&name.as_str()) {
            errors.push(name.clone(), UNKNOWN);
            reported.insert(name);
        } else {
            match values.entry(name) {
                Entry::Occupied(given) => {
                    let (name, _) = given.remove_entry();
                    errors.push(name.clone(), REPEATED);
                    reported.insert(name);
                }
                Entry::Vacant(slot) => match decode(raw_value) {
                    Some(value) => {
                        slot.insert(value);
                    }
                    None => {
                        errors.push(slot.key().clone(), NOT_TEXT);
                        reported.insert(slot.into_key());
                    }
                },
            }
        }
    }
    values
}

/// A whole-number parameter, written as JSON writes one: decimal digits, `-` before a
/// negative one (no `+`, no fraction, no exponent, no spaces). A number beyond `i64`'s range
/// is clamped to it, as in a body, so that the parser's range check names the bounds.
/// `Some(None)` when absent, `None` (recorded) when it is not a whole number.
pub fn integer(errors: &mut FieldErrors, name: &str, raw: Option<&str>) -> Option<Option<i64>> {
    let Some(raw) = raw else { return Some(None) };
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        errors.push(name, "must be a whole number");
        return None;
    }
    let clamped = if raw.starts_with('-') { i64::MIN } else { i64::MAX };
    Some(Some(raw.parse().unwrap_or(clamped)))
}

#[cfg(test)]
mod tests {
    use lemonade_domain::ShopError;

    use super::*;

    fn errors_of(errors: FieldErrors) -> Vec<(String, String)> {
        if errors.is_empty() {
            return vec![];
        }
        let ShopError::ValidationFailed { errors } = ShopError::from(errors) else {
            unreachable!()
        };
        errors.into_iter().map(|e| (e.field, e.message)).collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn known_parameters_given_once_are_decoded() {
        let mut errors = FieldErrors::default();
        let values = read("q=Zo%C3%AB+M&&limit=5&cursor=", &["q", "limit", "cursor"], &mut errors);
        assert!(errors.is_empty());
        assert_eq!(
            values.into_iter().collect::<Vec<_>>(),
            pairs(&[("cursor", ""), ("limit", "5"), ("q", "Zoë M")])
        );
    }

    #[test]
    fn unknown_repeated_and_undecodable_parameters_are_each_reported_once() {
        let mut errors = FieldErrors::default();
        let values = read(
            "zzz=1&limit=1&Limit=2&limit=2&zzz=2&q=%FF&cursor=a&limit=3&%FF=1&=4&cursor",
            &["q", "limit", "cursor"],
            &mut errors,
        );
        assert!(values.is_empty(), "{values:?}");
        assert_eq!(
            errors_of(errors),
            pairs(&[
                ("zzz", UNKNOWN),
                ("Limit", UNKNOWN),
                ("limit", REPEATED),
                ("q", NOT_TEXT),
                ("\u{FFFD}", NOT_TEXT),
                ("", NAMELESS),
                ("cursor", REPEATED),
            ])
        );
    }

    #[test]
    fn whole_numbers_are_digits_with_an_optional_minus_and_clamped_to_i64() {
        for (raw, expected) in [
            ("5", 5),
            ("-840", -840),
            ("007", 7),
            ("99999999999999999999", i64::MAX),
            ("-99999999999999999999", i64::MIN),
        ] {
            let mut errors = FieldErrors::default();
            assert_eq!(integer(&mut errors, "n", Some(raw)), Some(Some(expected)), "{raw}");
            assert!(errors.is_empty());
        }
        for raw in ["", "-", "+5", "2.5", "2.0", "1e2", " 5", "5 ", "ten", "0x10"] {
            let mut errors = FieldErrors::default();
            assert_eq!(integer(&mut errors, "n", Some(raw)), None, "{raw:?}");
            assert_eq!(errors_of(errors), pairs(&[("n", "must be a whole number")]));
        }
        assert_eq!(integer(&mut FieldErrors::default(), "n", None), Some(None));
    }
}
