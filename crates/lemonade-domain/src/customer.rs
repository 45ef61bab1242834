//! Customers, their loyalty points and the CRM activity log.

use serde::{Deserialize, Serialize};

#[cfg(test)]
use crate::error::ShopError;
use crate::error::{FieldError, FieldErrors};
use crate::ids::{CustomerId, OrderId};
use crate::order::Order;
use crate::values::{Timestamp, parse_name};

/// Longest email address, in characters as sent.
pub const EMAIL_LEN_MAX: usize = 254;
/// Longest phone number, in characters as sent.
pub const PHONE_LEN_MAX: usize = 32;
/// The name an anonymised customer keeps: the accounting records stay, the person does not.
pub const ANONYMISED_NAME: &str = "Anonymised customer";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Customer {
    pub id: CustomerId,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub points: u64,
    pub anonymised: bool,
    pub created_at: Timestamp,
}

/// What happened to a customer, newest last in an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Created,
    Updated,
    OrderPlaced,
    OrderCancelled,
    Anonymised,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Created => "created",
            ActivityKind::Updated => "updated",
            ActivityKind::OrderPlaced => "order_placed",
            ActivityKind::OrderCancelled => "order_cancelled",
            ActivityKind::Anonymised => "anonymised",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "created" => ActivityKind::Created,
            "updated" => ActivityKind::Updated,
            "order_placed" => ActivityKind::OrderPlaced,
            "order_cancelled" => ActivityKind::OrderCancelled,
            "anonymised" => ActivityKind::Anonymised,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Activity {
    pub kind: ActivityKind,
    pub order_id: Option<OrderId>,
    pub points_delta: i64,
    pub created_at: Timestamp,
}

/// Everything the shop holds about one person (a subject access request).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerExport {
    pub customer: Customer,
    pub orders: Vec<Order>,
    pub activity: Vec<Activity>,
    pub exported_at: Timestamp,
}

/// What an erasure (`DELETE /customers/{id}`) got to by the time it was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Erasure {
    /// Done: the customer as they now are, anonymised.
    Done(Customer),
    /// Recorded but not finished (distributed mode: the customer list was down, or orders of
    /// theirs were still being completed). It cannot be undone, no order can name the
    /// customer from the answer on, and it finishes by itself.
    UnderWay(ErasureUnderWay),
}

/// An erasure recorded but not finished: the body of `202 Accepted`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErasureUnderWay {
    /// The customer being erased.
    pub id: CustomerId,
    /// What happened and what happens next, in words a person can act on.
    pub detail: String,
}

/// Where a customer stands for placing orders, in the order the states are reached: a
/// customer's standing only moves forward (`Active` < `Erasing` < `Erased`), so a late word
/// about them can never move them back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Standing {
    /// Known and not asked to be erased: orders may name them.
    Active,
    /// Their erasure was asked for and is not finished (distributed mode): no order may name
    /// them from then on.
    Erasing,
    /// Anonymised.
    Erased,
}

impl Standing {
    /// Every standing, in the order they are reached.
    pub const ALL: [Standing; 3] = [Standing::Active, Standing::Erasing, Standing::Erased];

    /// The stored name of the standing.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Active => "active",
            Standing::Erasing => "erasing",
            Standing::Erased => "erased",
        }
    }

    /// The standing of a stored name; `None` for a name no standing has.
    pub fn parse(raw: &str) -> Option<Standing> {
        Standing::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl Customer {
    /// Where the customer stands, as their record says: anonymised is `Erased`.
    pub fn standing(&self) -> Standing {
        if self.anonymised {
            Standing::Erased
        } else {
            Standing::Active
        }
    }
}

/// Whether an order may name a customer: `known` is where the shop knows them to stand
/// (`None`: it has no such customer). Only an active customer may be named; the refusal is
/// the field error on `customer_id` that both modes answer, the same words for a customer
/// anonymised and for one whose erasure is under way.
pub fn check_order_customer(known: Option<Standing>) -> Result<(), FieldError> {
    let message = match known {
        Some(Standing::Active) => return Ok(()),
        None => UNKNOWN_CUSTOMER,
        Some(Standing::Erasing | Standing::Erased) => ANONYMISED_CUSTOMER,
    };
    Err(FieldError::new("customer_id", message))
}

/// Why an order may not name a customer, on `customer_id`: the shop does not know them.
pub const UNKNOWN_CUSTOMER: &str = "no such customer";
/// Why an order may not name a customer, on `customer_id`: they were anonymised (or their
/// erasure was asked for).
pub const ANONYMISED_CUSTOMER: &str = "this customer was anonymised";

/// Contact details, parsed. Empty strings mean "none".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerFields {
    pub name: Option<String>,
    /// `None`: leave as it is; `Some(None)`: clear it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub email: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub phone: Option<Option<String>>,
}

/// Keeps "absent" and "null" apart on the internal wire: an absent field is `None`, a null
/// one `Some(None)`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Only called for `Some`: `None` is skipped.
    pub fn serialize<S: Serializer>(value: &Option<Option<String>>, s: S) -> Result<S::Ok, S::Error> {
        value.as_ref().expect("None is skipped").serialize(s)
    }

    /// Only called when the field is there: it is then a change, to null or to a value.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// How an email address reads `c`: its compatibility form ([`crate::text::compatibility_form`]:
/// full-width `'Ａ'` is "A", `'＠'` is "@", `'．'` is "."), as a phone number reads its digits.
/// `None` (refused) when that form is several characters and holds `@`, `.` or a space
/// (`'‥'` is "..", `'⒈'` is "1.", `'´'` is a space and a mark), or shows nothing of what the
/// character shows (half-width `'ﾞ'` is a combining mark): no address holds such a character,
/// and reading it as its form would put signs where the person typed none (or take one away).
pub fn email_char(c: char) -> Option<String> {
    let form = crate::text::compatibility_form(c);
    if form.chars().eq([c]) {
        return Some(form);
    }
    let several = form.chars().nth(1).is_some();
    let signs = form.contains(|p: char| p == '@' || p == '.' || crate::text::is_space(p));
    let hides = crate::text::is_visible(c) && !form.chars().any(crate::text::is_visible);
    let refused = hides || several && signs;
    (!refused).then_some(form)
}

/// An email address in its display form ([`crate::text::display_form`]: trimmed, NFC, nothing
/// invisible), each character read in its compatibility form first ([`email_char`]: a
/// full-width address is an ASCII one, since only that can receive mail), with the domain
/// lower-cased (domains are case-insensitive; the local part is the receiving server's to
/// read, so it keeps its case). A blank one means none. Emails are compared (in a search) by
/// their [`crate::text::search_key`], which ignores case. Lengths count the characters as sent
/// (see [`crate::values::parse_name`]).
///
/// An address is `local@domain`: one `@`, something before it, a `.` in the domain but not at
/// either end of it, no white space inside. These checks read what a person sees: the
/// invisible characters the display form keeps (after an emoji, in a joined script) are
/// skipped, so no invisible character makes an address valid or invalid (`a@\u{fe00}.b.co`
/// is refused like `a@.b.co`).
pub fn parse_email(raw: &str) -> Result<Option<String>, String> {
    const BAD: &str = "not an email address";
    if raw.chars().count() > EMAIL_LEN_MAX {
        return Err(format!("{BAD}: at most {EMAIL_LEN_MAX} characters"));
    }
    if let Some(refusal) = raw.chars().find_map(crate::text::refusal) {
        return Err(format!("{BAD}: {refusal}"));
    }
    let compatible = raw
        .chars()
        .map(email_char)
        .collect::<Option<String>>()
        .ok_or_else(|| BAD.to_owned())?;
    let text = crate::text::display_form(&compatible).map_err(|_| BAD.to_owned())?;
    if crate::text::is_blank(&text) {
        return Ok(None);
    }
    let seen: String = text.chars().filter(|&c| !crate::text::is_ignorable(c)).collect();
    let valid = !seen.contains(' ')
        && seen.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    match text.split_once('@') {
        Some((local, domain)) if valid => Ok(Some(format!("{local}@{}", domain.to_lowercase()))),
        _ => Err(BAD.into()),
    }
}

/// What a phone number may hold besides digits and white space.
pub const PHONE_SIGNS: &str = "+-().";

/// The ASCII digit or [`PHONE_SIGNS`] sign that `c` stands for in a phone number: itself, or
/// what its compatibility form is ([`crate::text::compatibility_char`]: `'５'`, `'⁵'`, `'⑤'`
/// are `'5'`, `'＋'` is `'+'`). `None` for anything else, white space included.
pub fn phone_symbol(c: char) -> Option<char> {
    crate::text::compatibility_char(c).filter(|s| s.is_ascii_digit() || PHONE_SIGNS.contains(*s))
}

/// `raw` as a phone number: its [`phone_symbol`]s, every run of white space (and blank glyphs,
/// [`crate::text::is_space`]) one space, trimmed, invisible characters dropped (a number copied from a web page often carries bidi marks or
/// zero-width spaces). `None` when it holds anything else.
fn phone_form(raw: &str) -> Option<String> {
    let mut number = String::with_capacity(raw.len());
    let mut gap = false;
    for c in raw.chars() {
        if crate::text::is_space(c) {
            gap = true;
        } else if !crate::text::is_ignorable(c) {
            if gap && !number.is_empty() {
                number.push(' ');
            }
            gap = false;
            number.push(phone_symbol(c)?);
        }
    }
    Some(number)
}

/// Fewest digits in a phone number.
pub const PHONE_DIGITS_MIN: usize = 3;

/// A phone number: at least [`PHONE_DIGITS_MIN`] digits, with white space and [`PHONE_SIGNS`],
/// read one character at a time ([`phone_symbol`]: full-width digits and signs become ASCII;
/// a character whose compatibility form is several, such as `'⑩'`, is not taken), invisible
/// characters dropped, white space one space, trimmed. A blank one means none. Searched by its
/// digits alone.
pub fn parse_phone(raw: &str) -> Result<Option<String>, String> {
    if raw.chars().count() > PHONE_LEN_MAX {
        return Err(format!("not a phone number: at most {PHONE_LEN_MAX} characters"));
    }
    let refused = raw.chars().any(crate::text::is_refused);
    if !refused && crate::text::is_blank(raw) {
        return Ok(None);
    }
    match phone_form(raw).filter(|_| !refused) {
        Some(number) if number.chars().filter(char::is_ascii_digit).count() >= PHONE_DIGITS_MIN => Ok(Some(number)),
        _ => Err(format!(
            "not a phone number: at least {PHONE_DIGITS_MIN} digits, with spaces and + - ( ) . only"
        )),
    }
}

/// The text a customer search looks in, a line at a time: the [`crate::text::search_key`]s of
/// the name (as written, then in small letters and in capitals where those differ), of the
/// email, and the digits of the phone. The name in each case: a letter whose two cases read as
/// two letters (Greek `Ν` reads N, `ν` v) is read in the case written, so "Νίκος" is found by
/// "ΝΙΚΟΣ" as written and by "νίκος" in small letters. Stored beside the customer (it is
/// personal data: it changes and goes with the fields it is made of).
pub fn search_text(name: &str, email: Option<&str>, phone: Option<&str>) -> String {
    let digits: String = phone.unwrap_or_default().chars().filter(char::is_ascii_digit).collect();
    let mut names = vec![crate::text::search_key(name)];
    for other in [name.to_lowercase(), name.to_uppercase()].map(|n| crate::text::search_key(&n)) {
        if !names.contains(&other) {
            names.push(other);
        }
    }
    format!(
        "{}\n{}\n{digits}",
        names.join("\n"),
        email.map(crate::text::search_key).unwrap_or_default()
    )
}

/// A customer search, parsed: what to look for in [`search_text`]. It matches a customer whose
/// search text contains `text` (case and accents ignored, as a person expects: "zoe", "ZOË" and
/// "Zoë" find "Zoë Müller"), or, for a query that reads as a phone number, whose text contains
/// its `digits` ("+447700900123" finds "+44 7700 900123" and the reverse).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerSearch {
    /// Never empty, never holds a line break.
    pub text: String,
    /// The query's digits, when it reads as a phone number: digits, white space and
    /// [`PHONE_SIGNS`] alone (as [`parse_phone`] reads them).
    pub digits: Option<String>,
}

impl CustomerSearch {
    /// `None` for a query with nothing visible in it: no filter.
    pub fn parse(raw: &str) -> Option<Self> {
        let text = crate::text::search_key(raw);
        if crate::text::is_blank(&text) {
            return None;
        }
        let digits: Option<String> = phone_form(raw).map(|n| n.chars().filter(char::is_ascii_digit).collect());
        Some(Self {
            text,
            digits: digits.filter(|d| !d.is_empty()),
        })
    }

    /// Whether a customer with this [`search_text`] is found (what the store's query does).
    pub fn matches(&self, search_text: &str) -> bool {
        search_text.contains(&self.text) || self.digits.as_ref().is_some_and(|d| search_text.contains(d.as_str()))
    }
}

impl CustomerFields {
    /// Parses contact details into `errors` (every bad field). For a new customer the name is
    /// required; for a patch every field is optional but at least one must be given. `None`
    /// is a field the request lacks (or had with the wrong JSON type, already reported); an
    /// empty email or phone clears it.
    pub fn parse(
        errors: &mut FieldErrors,
        name: Option<&str>,
        email: Option<&str>,
        phone: Option<&str>,
        is_new: bool,
    ) -> Option<Self> {
        let name = if is_new { errors.require("name", name) } else { name };
        let fields = CustomerFields {
            name: name.and_then(|n| errors.check("name", parse_name(n))),
            email: email.and_then(|e| errors.check("email", parse_email(e))),
            phone: phone.and_then(|p| errors.check("phone", parse_phone(p))),
        };
        if !errors.is_empty() {
            return None;
        }
        if !is_new && fields == CustomerFields::default() {
            errors.push("", "name at least one field to change");
            return None;
        }
        Some(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_active_customer_may_be_named_by_an_order() {
        assert_eq!(check_order_customer(Some(Standing::Active)), Ok(()));
        let refused = |message: &str| Err(FieldError::new("customer_id", message));
        assert_eq!(check_order_customer(None), refused(UNKNOWN_CUSTOMER));
        assert_eq!(
            check_order_customer(Some(Standing::Erasing)),
            refused(ANONYMISED_CUSTOMER)
        );
        assert_eq!(
            check_order_customer(Some(Standing::Erased)),
            refused(ANONYMISED_CUSTOMER)
        );
    }

    #[test]
    fn an_anonymised_customer_stands_erased_and_standings_read_back_from_their_names() {
        let mut customer = Customer {
            id: CustomerId::parse("c1").unwrap(),
            name: "Ada".into(),
            email: None,
            phone: None,
            points: 0,
            anonymised: false,
            created_at: Timestamp(0),
        };
        assert_eq!(customer.standing(), Standing::Active);
        customer.anonymised = true;
        assert_eq!(customer.standing(), Standing::Erased);
        for s in Standing::ALL {
            assert_eq!(Standing::parse(s.as_str()), Some(s));
        }
        assert_eq!(Standing::parse("gone"), None);
        assert!(Standing::ALL.is_sorted(), "listed in the order they are reached");
    }

    impl CustomerFields {
        fn try_parse(
            name: Option<&str>,
            email: Option<&str>,
            phone: Option<&str>,
            is_new: bool,
        ) -> Result<Self, ShopError> {
            FieldErrors::collect(|e| CustomerFields::parse(e, name, email, phone, is_new))
        }
    }

    #[test]
    fn emails_and_phones_are_checked_and_blank_means_none() {
        let ok =
            CustomerFields::try_parse(Some("Ada"), Some(" ada@example.org "), Some("+44 20 7946 0958"), true).unwrap();
        assert_eq!(ok.email, Some(Some("ada@example.org".into())));
        assert!(CustomerFields::try_parse(Some("Ada"), Some("ada@"), None, true).is_err());
        assert!(CustomerFields::try_parse(Some("Ada"), None, Some("call me"), true).is_err());
        let blank = CustomerFields::try_parse(Some("Ada"), Some(""), None, true).unwrap();
        assert_eq!(blank.email, Some(None));
        // A refused character is named, as in a name (found by a tester).
        let refused = parse_email("a\u{e000}@b.c").unwrap_err();
        assert!(refused.contains("private-use or unassigned"), "{refused}");
    }

    #[test]
    fn emails_and_phones_are_normalised() {
        let c = CustomerFields::try_parse(
            Some("Zoë"),
            Some("\u{200b} Zoë.Müller@Exämple.ORG\u{a0}"),
            Some("＋44\u{a0}7700 900123"),
            true,
        )
        .unwrap();
        assert_eq!(c.email, Some(Some("Zoë.Müller@exämple.org".into())));
        assert_eq!(c.phone, Some(Some("+44 7700 900123".into())));
        assert!(CustomerFields::try_parse(Some("Zoë"), Some("zoë @example.org"), None, true).is_err());
        let blank = CustomerFields::try_parse(Some("Zoë"), Some("\u{2800}"), Some("\u{200b}"), true).unwrap();
        assert_eq!((blank.email, blank.phone), (Some(None), Some(None)));
    }

    /// A full-width address cannot receive mail: it is read in its compatibility form, `＠`
    /// and `．` included, the way a phone number's full-width digits are.
    #[test]
    fn an_email_is_read_in_its_compatibility_form() {
        assert_eq!(
            parse_email("ＡＤＡ@ＥＸＡＭＰＬＥ.ORG"),
            Ok(Some("ADA@example.org".into()))
        );
        assert_eq!(parse_email("ada＠example.org"), Ok(Some("ada@example.org".into())));
        assert_eq!(parse_email("ada@example．org"), Ok(Some("ada@example.org".into())));
        assert_eq!(parse_email("ada﹫example.org"), Ok(Some("ada@example.org".into())));
        assert_eq!(
            parse_email("ﬁnance@example.org"),
            Ok(Some("finance@example.org".into()))
        );
        // A character whose compatibility form is several and holds a sign or a space.
        for refused in ["a@b‥co", "a@b⒈co", "a´b@c.co", "a@b…co"] {
            assert!(parse_email(refused).is_err(), "{refused:?}");
        }
        // A blank glyph is a space, and no address holds one.
        assert!(parse_email("ada\u{2800}lovelace@example.org").is_err());
        assert_eq!(
            parse_email("\u{2800}ada@example.org\u{2800}"),
            Ok(Some("ada@example.org".into()))
        );
    }

    /// What [`email_char`] reads a character as is, to the field's rules, the same kind of
    /// character (visible, ignorable, space, refused), so that the rule can be stated one
    /// character at a time; and every character it refuses is visible (so a blank text never
    /// holds one).
    #[test]
    fn an_email_reads_a_character_as_one_of_its_own_kind() {
        use crate::text::{is_ignorable, is_refused, is_space, is_visible};
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let Some(form) = email_char(c) else {
                assert!(is_visible(c), "{c:?}");
                continue;
            };
            assert_eq!(form.chars().any(is_visible), is_visible(c), "{c:?}");
            assert_eq!(form.chars().all(is_ignorable), is_ignorable(c), "{c:?}");
            assert_eq!(form.chars().all(is_space), is_space(c), "{c:?}");
            assert_eq!(form.chars().any(is_refused), is_refused(c), "{c:?}");
            assert_eq!(form.starts_with(is_ignorable), is_ignorable(c), "{c:?}");
        }
    }

    #[test]
    fn no_invisible_character_makes_an_email_valid_or_invalid() {
        // A variation selector after `@` is kept by the display form (it follows a base in its
        // grapheme cluster), yet a person reads the domain as starting with a dot.
        assert_eq!(parse_email("a@\u{fe00}.b.co"), parse_email("a@.b.co"));
        assert_eq!(parse_email("a@b.co.\u{fe00}"), parse_email("a@b.co."));
        assert_eq!(
            parse_email("a\u{200b}@b.co\u{fe00}").unwrap(),
            Some("a@b.co\u{fe00}".into())
        );
        assert!(parse_email("\u{200b}@b.co").is_err());
    }

    #[test]
    fn a_blank_glyph_in_a_phone_number_is_a_space() {
        assert_eq!(
            parse_phone("+44\u{2800}7700\u{1d159}900123"),
            Ok(Some("+44 7700 900123".into()))
        );
    }

    #[test]
    fn a_phone_number_is_read_one_character_at_a_time() {
        for (raw, number) in [
            ("１２３\u{3000}４５", "123 45"),
            ("1\u{fe0f}23", "123"),
            ("\u{200e}+44\u{200f} (0)\u{ad}20", "+44 (0)20"),
            ("⁺①②③", "+123"),
        ] {
            assert_eq!(parse_phone(raw), Ok(Some(number.into())), "{raw:?}");
        }
        // A character whose compatibility form is several is not one symbol of a number; one
        // whose form is a space and a mark (a diaeresis) is not blank.
        for bad in ["⑩⑪", "¨", "12¨3", "1\u{301}23", "12\u{7}3"] {
            assert!(parse_phone(bad).is_err(), "{bad:?}");
        }
        for blank in ["", " \u{200b}", "\u{2800}", "\u{301}"] {
            assert_eq!(parse_phone(blank), Ok(None), "{blank:?}");
        }
    }

    #[test]
    fn a_search_finds_names_without_case_or_accents_and_phones_by_digits() {
        let zoe = search_text("Zoë 🍋 Müller", Some("Zoe@Example.org"), Some("+44 7700 900123"));
        let compact = search_text("Ann", None, Some("+447700900123"));
        let find = |q: &str, text: &str| CustomerSearch::parse(q).unwrap().matches(text);
        for q in [
            "MÜLLER",
            "ZOË",
            "zoe",
            "Zoë 🍋",
            "zoe@example",
            "+447700900123",
            "7700 900",
            "(7700) 900-123",
        ] {
            assert!(find(q, &zoe), "{q:?}");
        }
        assert!(find("+44 7700 900123", &compact));
        assert!(!find("Müller Zoë", &zoe));
        // Found by a fifth tester: a Greek name with ν (N as a capital, v small) is found in
        // either case of the query.
        let nikos = search_text("Νίκος Βέρος", None, None);
        let anna = search_text("ΝΙΚΟΣ ΑΝΝΑ", None, None);
        for q in ["νίκος", "ΝΙΚΟΣ", "Νικος", "νικος", "Νίκ"] {
            assert!(find(q, &nikos) && find(q, &anna), "{q:?}");
        }
        for q in ["άννα", "ΑΝΝΑ", "Άννα"] {
            assert!(find(q, &anna), "{q:?}");
        }
        assert!(!find("100%", &zoe), "no wildcard");
        assert_eq!(CustomerSearch::parse(" \u{200b}\u{2800}"), None);
    }

    #[test]
    fn a_new_customer_needs_a_name_and_a_patch_needs_a_field() {
        assert!(CustomerFields::try_parse(None, Some("a@b.co"), None, true).is_err());
        assert!(CustomerFields::try_parse(None, None, None, false).is_err());
    }
}

#[cfg(test)]
mod wire_tests {
    use super::CustomerFields;

    #[test]
    fn customer_fields_keep_leaving_alone_apart_from_clearing_on_the_wire() {
        for fields in [
            CustomerFields::default(),
            CustomerFields {
                name: Some("Ada".into()),
                email: Some(None),
                phone: Some(Some("0123".into())),
            },
        ] {
            let wire = serde_json::to_string(&fields).unwrap();
            assert_eq!(serde_json::from_str::<CustomerFields>(&wire).unwrap(), fields, "{wire}");
        }
    }
}
