//! Reading a JSON request body field by field, so that a client hears of every bad field at
//! once: a wrong JSON type, a `null` where none is allowed and an unknown field are each
//! recorded under the field's path (`lines[2].quantity`) and reading goes on, where serde's
//! derived deserializers would stop at the first. What is missing is for the domain's parsers
//! to say (they know what a request needs; see [`FieldErrors::require`]), and the values are
//! theirs to check too.
//!
//! Malformed JSON (a syntax error) is still one error for the whole body (400): nothing after
//! it can be read. A body that is not an object is one error on the field `""`.
//!
//! A key given twice in one object (`{"name": "a", "name": "b"}`), at any depth, is an error
//! on that field, "given more than once", and neither value is read. It is well-formed JSON
//! (RFC 8259 §4 only says names SHOULD be unique), so not a 400: the field can be named and
//! the other fields still read. What it is not is one request: parsers differ on which value
//! wins, so a proxy or a log may have seen another request than the shop.

use std::cell::RefCell;
use std::fmt;

use lemonade_domain::error::FieldErrors;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The error of a key given twice or more in one object.
pub const REPEATED: &str = "given more than once";

/// A parsed body, with the keys it gave more than once taken out (see [`parse`]).
#[derive(Debug)]
pub struct Body {
    value: Value,
    /// The paths of the keys given more than once (`lines[0].quantity`), in document order.
    repeated: Vec<String>,
}

/// One step of a path into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn path_text(steps: &[Step]) -> String {
    let mut text = String::new();
    for step in steps {
        match step {
            Step::Key(key) if text.is_empty() => text.push_str(key),
            Step::Key(key) => {
                text.push('.');
                text.push_str(key);
            }
            Step::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

/// Walks a document, noting where an object gives a key twice; reads no values.
struct Repeats<'a> {
    at: Vec<Step>,
    found: &'a RefCell<Vec<Vec<Step>>>,
}

impl<'de> DeserializeSeed<'de> for Repeats<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Repeats<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let mut at = self.at.clone();
            at.push(Step::Index(i));
            if items.next_element_seed(Repeats { at, found: self.found })?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut fields: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        let mut repeated = std::collections::HashSet::new();
        while let Some(key) = fields.next_key::<String>()? {
            let mut at = self.at.clone();
            at.push(Step::Key(key.clone()));
            if seen.insert(key.clone()) {
                fields.next_value_seed(Repeats { at, found: self.found })?;
            } else {
                // Neither value will be read: what is inside them does not matter.
                fields.next_value::<IgnoredAny>()?;
                if repeated.insert(key) {
                    self.found.borrow_mut().push(at);
                }
            }
        }
        Ok(())
    }
}

/// Takes the value at `path` out of `value`, if it is there.
fn remove(value: &mut Value, path: &[Step]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for step in parents {
        let next = match step {
            Step::Key(key) => at.get_mut(key.as_str()),
            Step::Index(i) => at.get_mut(*i),
        };
        match next {
            Some(next) => at = next,
            None => return,
        }
    }
    if let (Step::Key(key), Value::Object(fields)) = (last, at) {
        fields.remove(key);
    }
}

/// Parses a body. A syntax error is the error; each key an object gives more than once is
/// noted and taken out of it (a key inside one that was taken out is not noted too), for
/// [`read`] to report.
pub fn parse(bytes: &[u8]) -> Result<Body, serde_json::Error> {
    let mut value: Value = serde_json::from_slice(bytes)?;
    let found = RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    Repeats {
        at: Vec::new(),
        found: &found,
    }
    .deserialize(&mut deserializer)?;
    let found = found.into_inner();
    // A repeat inside the first of a repeated key's values goes with it, unreported.
    let inside_another = |path: &[Step]| {
        found
            .iter()
            .any(|outer| outer.len() < path.len() && path.starts_with(outer))
    };
    let repeated: Vec<&Vec<Step>> = found.iter().filter(|path| !inside_another(path)).collect();
    for path in &repeated {
        remove(&mut value, path);
    }
    Ok(Body {
        value,
        repeated: repeated.iter().map(|p| path_text(p)).collect(),
    })
}

impl From<Value> for Body {
    /// A body built in code, which cannot repeat a key.
    fn from(value: Value) -> Self {
        Body {
            value,
            repeated: Vec::new(),
        }
    }
}

/// An object of the body, being read. Created by [`Reader::object`]; the fields it never asked
/// for are reported as unknown by [`Reader::finish`].
pub struct Reader<'e> {
    path: String,
    fields: Map<String, Value>,
    errors: &'e mut FieldErrors,
}

/// What the JSON type of a field must be, in the words of its error.
const STRING: &str = "must be a string";
const INTEGER: &str = "must be a whole number";
const BOOLEAN: &str = "must be true or false";
const ARRAY: &str = "must be an array";
const OBJECT: &str = "must be a JSON object";

fn as_string(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn as_integer(v: Value) -> Option<i64> {
    let Value::Number(n) = v else { return None };
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.as_u64().is_some() {
        return Some(i64::MAX);
    }
    // A float: whole ones only; `as` saturates at i64's ends.
    n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)
}

impl<'e> Reader<'e> {
    /// Starts reading `value` as the object at `path` (`""` for the body itself). `None`, with
    /// the error recorded, when it is not an object.
    pub fn object(value: Value, path: String, errors: &'e mut FieldErrors) -> Option<Self> {
        match value {
            Value::Object(fields) => Some(Reader { path, fields, errors }),
            _ => {
                errors.push(path, OBJECT);
                None
            }
        }
    }

    /// The path of one of this object's fields.
    fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Takes a field: `None` when absent, `Some(Value::Null)` for null.
    fn take(&mut self, key: &str) -> Option<Value> {
        self.fields.remove(key)
    }

    /// A field of one JSON type. Absent: `None`. Null: refused, unless `null_is_absent`. Of
    /// another type: recorded with `expected`, and `None`.
    fn typed<T>(
        &mut self,
        key: &str,
        null_is_absent: bool,
        expected: &str,
        convert: impl FnOnce(Value) -> Option<T>,
    ) -> Option<T> {
        let value = self.take(key)?;
        if value.is_null() && null_is_absent {
            return None;
        }
        let converted = convert(value);
        if converted.is_none() {
            let path = self.path_of(key);
            self.errors.push(path, expected);
        }
        converted
    }

    /// A string that must not be null.
    pub fn string(&mut self, key: &str) -> Option<String> {
        self.typed(key, false, STRING, as_string)
    }

    /// A string where null means the same as leaving the field out.
    pub fn optional_string(&mut self, key: &str) -> Option<String> {
        self.typed(key, true, STRING, as_string)
    }

    /// A string where null means "clear it": `Some(None)`.
    pub fn clearable_string(&mut self, key: &str) -> Option<Option<String>> {
        match self.fields.get(key) {
            Some(Value::Null) => {
                self.take(key);
                Some(None)
            }
            _ => self.string(key).map(Some),
        }
    }

    /// A whole number that must not be null. As in JSON Schema, `2.0` is the whole number 2;
    /// one beyond i64's range is clamped to it (every bound the parsers check is far inside).
    pub fn integer(&mut self, key: &str) -> Option<i64> {
        self.typed(key, false, INTEGER, as_integer)
    }

    /// A whole number where null means the same as leaving the field out.
    pub fn optional_integer(&mut self, key: &str) -> Option<i64> {
        self.typed(key, true, INTEGER, as_integer)
    }

    /// `true` or `false`, not null.
    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        self.typed(key, false, BOOLEAN, |v| v.as_bool())
    }

    /// `true` or `false`, where null means the same as leaving the field out.
    pub fn optional_boolean(&mut self, key: &str) -> Option<bool> {
        self.typed(key, true, BOOLEAN, |v| v.as_bool())
    }

    /// An array of objects, each read by `item` (from a reader whose path is `key[i]`). An
    /// element that is not an object is recorded and read as an empty one, so that the
    /// positions of the others stay those of the request; `None` when the field is absent or
    /// not an array.
    pub fn objects<T>(&mut self, key: &str, mut item: impl FnMut(&mut Reader) -> T) -> Option<Vec<T>> {
        let values = self.typed(key, false, ARRAY, |v| match v {
            Value::Array(values) => Some(values),
            _ => None,
        })?;
        let path = self.path_of(key);
        let mut items = Vec::with_capacity(values.len());
        for (i, value) in values.into_iter().enumerate() {
            let path = format!("{path}[{i}]");
            let fields = match value {
                Value::Object(fields) => fields,
                _ => {
                    self.errors.push(path.clone(), OBJECT);
                    Map::new()
                }
            };
            let mut reader = Reader {
                path,
                fields,
                errors: self.errors,
            };
            items.push(item(&mut reader));
            reader.finish();
        }
        Some(items)
    }

    /// Records every field that was not asked for as unknown.
    pub fn finish(self) {
        for key in self.fields.keys() {
            let path = self.path_of(key);
            self.errors.push(path, "is not a field of this request");
        }
    }
}

/// Reads a whole body with `read`, then reports its unknown fields; the keys it gave more than
/// once are reported first. `None` when the body is not an object (recorded).
pub fn read<T>(body: impl Into<Body>, errors: &mut FieldErrors, read: impl FnOnce(&mut Reader) -> T) -> Option<T> {
    let body = body.into();
    for path in body.repeated {
        errors.push(path, REPEATED);
    }
    let mut reader = Reader::object(body.value, String::new(), errors)?;
    let value = read(&mut reader);
    reader.finish();
    Some(value)
}

#[cfg(test)]
mod tests {
    use lemonade_domain::ShopError;
    use serde_json::json;

    use super::*;

    fn fields(errors: FieldErrors) -> Vec<(String, String)> {
        if errors.is_empty() {
            return vec![];
        }
        let ShopError::ValidationFailed { errors } = ShopError::from(errors) else {
            unreachable!()
        };
        errors.into_iter().map(|e| (e.field, e.message)).collect()
    }

    #[test]
    fn every_wrong_type_unknown_field_and_bad_item_is_reported_at_once() {
        let body = json!({
            "name": 5,
            "price": "cheap",
            "active": null,
            "colour": "red",
            "recipe": [{"ingredient_id": "lemon", "quantity": 1.5, "extra": 1}, 7, {"ingredient_id": null}]
        });
        let mut errors = FieldErrors::default();
        let read = read(body, &mut errors, |r| {
            let name = r.string("name");
            let price = r.integer("price");
            let active = r.boolean("active");
            let recipe = r.objects("recipe", |r| (r.string("ingredient_id"), r.integer("quantity")));
            (name, price, active, recipe)
        })
        .unwrap();
        assert_eq!(read.0, None);
        assert_eq!(
            read.3.unwrap(),
            [(Some("lemon".to_owned()), None), (None, None), (None, None)]
        );
        let found = fields(errors);
        let expected = [
            ("name", STRING),
            ("price", INTEGER),
            ("active", BOOLEAN),
            ("recipe[0].quantity", INTEGER),
            ("recipe[0].extra", "is not a field of this request"),
            ("recipe[1]", OBJECT),
            ("recipe[2].ingredient_id", STRING),
            ("colour", "is not a field of this request"),
        ];
        assert_eq!(found, expected.map(|(f, m)| (f.to_owned(), m.to_owned())), "{found:#?}");
    }

    #[test]
    fn null_is_absent_or_clears_where_the_field_says_so() {
        let mut errors = FieldErrors::default();
        let (customer, email, phone) = read(
            json!({"customer_id": null, "email": null, "phone": "0123"}),
            &mut errors,
            |r| {
                (
                    r.optional_string("customer_id"),
                    r.clearable_string("email"),
                    r.clearable_string("phone"),
                )
            },
        )
        .unwrap();
        assert!(errors.is_empty());
        assert_eq!((customer, email, phone), (None, Some(None), Some(Some("0123".into()))));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_one_error_on_the_whole_body() {
        for body in [json!([]), json!("x"), json!(null), json!(3)] {
            let mut errors = FieldErrors::default();
            assert!(read(body, &mut errors, |r| r.string("name")).is_none());
            assert_eq!(fields(errors), [(String::new(), OBJECT.to_owned())]);
        }
    }

    #[test]
    fn whole_numbers_are_integers_however_written_and_others_are_the_wrong_type() {
        let cases = [
            (json!(2.0), 2),
            (json!(-3), -3),
            (json!(1e300), i64::MAX),
            (json!(u64::MAX), i64::MAX),
            (json!(-1e300), i64::MIN),
        ];
        for (value, expected) in cases {
            let mut errors = FieldErrors::default();
            let n = read(json!({ "n": value }), &mut errors, |r| r.integer("n")).unwrap();
            assert_eq!(n, Some(expected));
            assert!(errors.is_empty());
        }
        for value in [json!(1.5), json!("1"), json!(true), json!([1])] {
            let mut errors = FieldErrors::default();
            let n = read(json!({ "n": value }), &mut errors, |r| r.integer("n")).unwrap();
            assert_eq!(n, None);
            assert_eq!(fields(errors), [("n".to_owned(), INTEGER.to_owned())]);
        }
    }

    #[test]
    fn a_key_given_twice_at_any_depth_is_reported_once_and_neither_value_is_read() {
        let raw = br#"{
            "name": "a", "name": 5, "name": "c",
            "lines": [
                {"product_id": "x", "quantity": 1, "quantity": 2},
                {"product_id": "y", "quantity": "three"}
            ],
            "extra": {"a": 1, "a": 2},
            "note": {"b": 1, "b": 1}, "note": "n"
        }"#;
        let body = parse(raw).unwrap();
        let mut errors = FieldErrors::default();
        let read = read(body, &mut errors, |r| {
            let name = r.string("name");
            let lines = r.objects("lines", |r| (r.string("product_id"), r.integer("quantity")));
            let note = r.optional_string("note");
            (name, lines, note)
        })
        .unwrap();
        assert_eq!(
            read,
            (
                None,
                Some(vec![(Some("x".to_owned()), None), (Some("y".to_owned()), None)]),
                None
            )
        );
        let expected = [
            ("name", REPEATED),
            ("lines[0].quantity", REPEATED),
            ("extra.a", REPEATED),
            ("note", REPEATED),
            ("lines[1].quantity", INTEGER),
            ("extra", "is not a field of this request"),
        ];
        assert_eq!(fields(errors), expected.map(|(f, m)| (f.to_owned(), m.to_owned())));
    }

    #[test]
    fn a_body_without_repeats_parses_as_json_and_a_syntax_error_is_still_one() {
        let body = parse(br#"{"a": [1, {"b": 2.5}], "c": null}"#).unwrap();
        assert!(body.repeated.is_empty());
        assert_eq!(body.value, json!({"a": [1, {"b": 2.5}], "c": null}));
        for bad in [&b"{"[..], b"{\"a\": 1,}", b"", b"{} {}"] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
