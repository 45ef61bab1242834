//! Text as a person reads it: the one home of the rules for names, notes and emails.
//!
//! Three forms of a text, each for one job:
//!
//! - [`display_form`] is what the shop stores and shows: Unicode NFC, every run of white space
//!   (NBSP, U+3000, tabs, ...) one U+0020, trimmed, and no invisible characters
//!   (`Default_Ignorable_Code_Point`: zero-width spaces, bidi marks, soft hyphens, Hangul
//!   fillers, ...), except where one changes what a person sees (see below).
//! - [`name_key`] is what "the same name" means: the display form under Unicode's
//!   compatibility caseless match (The Unicode Standard, D146: NFKD and full case folding,
//!   twice), without variation selectors. "Café T", "CAFÉ T", "Café T" written decomposed,
//!   "Café\u{200b} T", "Café\u{a0}T" and "Ｃａｆé Ｔ" have one key.
//! - [`search_key`] is what a search compares: the name key without diacritics
//!   (`Diacritic` nonspacing marks, as a collation at primary strength ignores them) and
//!   without joiners, so "zoe", "ZOË" and "Zoë" find each other.
//!
//! A text is [`is_blank`] when nothing in it is [`is_visible`]: only white space, ignorable
//! characters, marks with no base, controls and format characters, or characters whose glyph
//! is empty ([`BLANK_GLYPHS`]).
//!
//! Invisible characters kept in the display form, because they change what is shown:
//! - an emoji's ZWJ, variation selector or tag characters (`👩‍🍳` is one picture, `👩🍳`
//!   two; UTS #51), when their grapheme cluster holds an `Extended_Pictographic` character
//!   (or, for U+FE0E/U+FE0F, follows an `Emoji` character such as a keycap's digit);
//! - any other variation selector that follows a visible character in its grapheme cluster
//!   (ideographic variation sequences in CJK names);
//! - ZWJ and ZWNJ where IDNA allows them (RFC 5892, appendix A.1 and A.2: after a virama, and
//!   ZWNJ between joining letters), which is where they change the shape of Indic, Arabic and
//!   Persian words.
//!
//! Whether a field takes a text is decided by what its characters are, one at a time
//! ([`is_refused`], [`is_visible`], [`is_ignorable`], white space, [`compatibility_char`]),
//! never by how normalising regroups them (a test proves that canonical normalisation changes
//! none of these): so each field's rule is a regular expression over these sets, which the
//! API's schemas (`lemonade_api::schema`) build from these very functions.
//!
//! The character data is ICU4X's (the Unicode Consortium's library): normalisation, case
//! folding and properties come from one Unicode version; grapheme clusters (UAX #29) from
//! `unicode-segmentation`.

use icu_casemap::CaseMapperBorrowed;
use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};
use icu_properties::props::{
    CanonicalCombiningClass, DefaultIgnorableCodePoint, Diacritic, Emoji, ExtendedPictographic, GeneralCategory,
    JoiningType, VariationSelector,
};
use icu_properties::{CodePointMapData, CodePointSetData};
use unicode_segmentation::UnicodeSegmentation;

const ZWNJ: char = '\u{200C}';
const ZWJ: char = '\u{200D}';

/// Graphic characters, not ignorable, whose glyph is empty: a text of only these looks blank.
/// Found by searching the Unicode character names (UnicodeData.txt) for BLANK, FILLER, NULL,
/// INVISIBLE and EMPTY and keeping the graphic characters that draw nothing; the Hangul
/// fillers (U+115F, U+1160, U+3164, U+FFA0) and the invisible operators (U+2062..U+2064) that
/// search also finds are `Default_Ignorable_Code_Point` already.
pub const BLANK_GLYPHS: [char; 2] = [
    '\u{2800}',  // BRAILLE PATTERN BLANK (the standard says it is not a space, yet it draws nothing)
    '\u{1D159}', // MUSICAL SYMBOL NULL NOTEHEAD
];

/// Whether `c` is a `Default_Ignorable_Code_Point` (drawn as nothing: zero-width spaces, bidi
/// marks, joiners, variation selectors, soft hyphens, Hangul fillers, ...). The display form
/// removes these, except where one shows (see the module's doc).
pub fn is_ignorable(c: char) -> bool {
    CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

fn pictographic(c: char) -> bool {
    CodePointSetData::new::<ExtendedPictographic>().contains(c)
}

fn category(c: char) -> GeneralCategory {
    CodePointMapData::<GeneralCategory>::new().get(c)
}

/// Whether `c` alone shows something: a letter, number, punctuation or symbol (or a private
/// use or unassigned code point, which shows as a box), and not one of [`BLANK_GLYPHS`].
/// A text [`is_blank`] when it holds none of these.
pub fn is_visible(c: char) -> bool {
    use GeneralCategory as G;
    !c.is_whitespace()
        && !is_ignorable(c)
        && !BLANK_GLYPHS.contains(&c)
        && !matches!(
            category(c),
            G::Control
                | G::Format
                | G::Surrogate
                | G::NonspacingMark
                | G::SpacingMark
                | G::EnclosingMark
                | G::SpaceSeparator
                | G::LineSeparator
                | G::ParagraphSeparator
        )
}

/// Whether nothing in `text` is visible (see the module's doc).
pub fn is_blank(text: &str) -> bool {
    !text.chars().any(is_visible)
}

/// Whether a text refuses `c` wherever it stands: a control character (`Cc`) that is not
/// white space. A tab or a line break is white space, which the display form makes a space.
pub fn is_refused(c: char) -> bool {
    c.is_control() && !c.is_whitespace()
}

fn nfc(text: &str) -> String {
    ComposingNormalizerBorrowed::new_nfc().normalize(text).into_owned()
}

/// The display form of `raw` (see the module's doc). Refuses control characters other than
/// white space (a tab or a line break becomes a space).
pub fn display_form(raw: &str) -> Result<String, String> {
    if raw.chars().any(is_refused) {
        return Err("must not contain control characters".into());
    }
    Ok(shown(raw))
}

/// [`display_form`] without the check for control characters (which it leaves in place).
fn shown(raw: &str) -> String {
    let composed = nfc(raw);
    let chars: Vec<char> = composed.chars().collect();
    let mut kept = String::with_capacity(composed.len());
    let mut at = 0;
    for cluster in composed.graphemes(true) {
        let base = cluster.chars().next().expect("a grapheme cluster is never empty");
        let has_base = !base.is_whitespace() && !base.is_control() && !is_ignorable(base);
        let pictographic = cluster.chars().any(pictographic);
        // White space joins a cluster only after a prepended mark such as U+0600 ARABIC
        // NUMBER SIGN (UAX #29, GB9b); what follows that space is not attached to the base.
        let mut after_space = false;
        for (i, c) in cluster.chars().enumerate() {
            after_space |= c.is_whitespace();
            let keep = !is_ignorable(c)
                || (i > 0 && has_base && !after_space && shows_in_context(c, base, pictographic, &chars, at + i));
            if keep {
                kept.push(c);
            }
        }
        at += cluster.chars().count();
    }
    let mut spaced = String::with_capacity(kept.len());
    let mut gap = false;
    for c in kept.chars() {
        if c.is_whitespace() {
            gap = true;
        } else {
            if gap && !spaced.is_empty() {
                spaced.push(' ');
            }
            gap = false;
            spaced.push(c);
        }
    }
    // Removing a character can leave a base and its mark apart that it had kept from composing.
    nfc(&spaced)
}

/// Whether the ignorable `c`, at `chars[at]` in a grapheme cluster that starts with the
/// visible `base`, changes what is shown (see the module's doc). `emoji`: the cluster holds
/// an `Extended_Pictographic` character.
fn shows_in_context(c: char, base: char, emoji: bool, chars: &[char], at: usize) -> bool {
    if CodePointSetData::new::<VariationSelector>().contains(c) {
        return !matches!(c, '\u{FE0E}' | '\u{FE0F}') || emoji || CodePointSetData::new::<Emoji>().contains(base);
    }
    if emoji && ('\u{E0020}'..='\u{E007F}').contains(&c) {
        return true;
    }
    // An emoji ZWJ sequence: the ZWJ joins the pictograph after it into its cluster (UAX #29,
    // GB11), so it is never the cluster's last character.
    if emoji && c == ZWJ && chars.get(at + 1).copied().is_some_and(pictographic) {
        return true;
    }
    if c != ZWJ && c != ZWNJ {
        return false;
    }
    let before = chars[..at].last().copied();
    if before
        .is_some_and(|b| CodePointMapData::<CanonicalCombiningClass>::new().get(b) == CanonicalCombiningClass::Virama)
    {
        return true;
    }
    c == ZWNJ
        && joins(chars[..at].iter().rev(), JoiningType::LeftJoining)
        && joins(chars[at + 1..].iter(), JoiningType::RightJoining)
}

/// Whether the first character of `side` that is not transparent joins towards the ZWNJ
/// (`towards` is L for the letter before it, R for the one after; D joins both ways).
fn joins<'a>(side: impl Iterator<Item = &'a char>, towards: JoiningType) -> bool {
    let types = CodePointMapData::<JoiningType>::new();
    side.map(|&c| types.get(c))
        .find(|&t| t != JoiningType::Transparent)
        .is_some_and(|t| t == towards || t == JoiningType::DualJoining)
}

/// What "the same name" compares (see the module's doc). Never shown; total for any input.
pub fn name_key(raw: &str) -> String {
    let text: String = shown(raw)
        .chars()
        .filter(|&c| !CodePointSetData::new::<VariationSelector>().contains(c))
        .collect();
    let fold = |s: &str| CaseMapperBorrowed::new().fold_string(s).into_owned();
    let nfd = DecomposingNormalizerBorrowed::new_nfd();
    let nfkd = DecomposingNormalizerBorrowed::new_nfkd();
    // D146: NFKD(toCasefold(NFKD(toCasefold(NFD(X))))), composed again (NFKC) to be compact.
    let once = nfkd.normalize(&fold(&nfd.normalize(&text))).into_owned();
    let twice = nfkd.normalize(&fold(&once)).into_owned();
    ComposingNormalizerBorrowed::new_nfkc().normalize(&twice).into_owned()
}

/// What a search compares (see the module's doc). Never shown; total for any input.
pub fn search_key(raw: &str) -> String {
    let key = name_key(raw);
    let decomposed = DecomposingNormalizerBorrowed::new_nfd().normalize(&key).into_owned();
    let bare: String = decomposed
        .chars()
        .filter(|&c| {
            let diacritic =
                CodePointSetData::new::<Diacritic>().contains(c) && category(c) == GeneralCategory::NonspacingMark;
            !diacritic && !is_ignorable(c)
        })
        .collect();
    nfc(&bare)
}

/// The one character that `c` is in its compatibility form (NFKC): `'５'`, `'⁵'` and `'⑤'`
/// are `'5'`, `'＋'` is `'+'`, `'a'` is `'a'`. `None` when the compatibility form is several
/// characters (`'⑩'` is "10", `'…'` is "...") or none. For fields made of ASCII characters
/// such as a phone number, read one character at a time (so that what a field takes is a
/// set of characters).
pub fn compatibility_char(c: char) -> Option<char> {
    let mut utf8 = [0; 4];
    let form = ComposingNormalizerBorrowed::new_nfkc().normalize(c.encode_utf8(&mut utf8));
    let mut chars = form.chars();
    chars.next().filter(|_| chars.next().is_none())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const CAFE_T: &str = "Café T";

    #[test]
    fn names_that_read_the_same_have_one_key() {
        let key = name_key(CAFE_T);
        for same in [
            "Cafe\u{301} T",
            "Café\u{200b} T",
            "Café\u{a0}T",
            "  Café \u{3000}  T\t",
            "café t",
            "CAFÉ T",
            "\u{feff}Café T\u{200e}",
            "Ｃａｆé Ｔ",
        ] {
            assert_eq!(name_key(same), key, "{same:?}");
        }
        for other in ["Cafe T", "Café Tea", "CaféT"] {
            assert_ne!(name_key(other), key, "{other:?}");
        }
        assert_eq!(name_key("Straße"), name_key("STRASSE"));
    }

    #[test]
    fn the_display_form_is_nfc_with_one_kind_of_space_and_nothing_invisible() {
        assert_eq!(display_form("Cafe\u{301}\u{a0}\u{200b}T ").unwrap(), CAFE_T);
        assert_eq!(display_form("\u{2060}a\u{ad}b\u{200f}\n\n c\u{3164}").unwrap(), "ab c");
        assert_eq!(
            display_form("a\u{7}b").unwrap_err(),
            "must not contain control characters"
        );
    }

    #[test]
    fn emoji_sequences_keep_their_joiners_and_selectors() {
        for emoji in [
            "👩\u{200d}🍳",
            "☕\u{fe0f}",
            "1\u{fe0f}\u{20e3}",
            "🏴\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}",
            "👍🏽",
            "🇬🇧",
        ] {
            let name = format!("{emoji} Special");
            assert_eq!(display_form(&name).unwrap(), name, "{emoji:?}");
            assert!(!is_blank(emoji));
        }
        assert_ne!(name_key("👩\u{200d}🍳"), name_key("👩🍳"));
        assert_eq!(name_key("☕\u{fe0f}"), name_key("☕"));
    }

    #[test]
    fn joiners_stay_where_they_shape_a_word_and_go_elsewhere() {
        let persian = "می\u{200c}خواهم";
        assert_eq!(display_form(persian).unwrap(), persian);
        let devanagari = "क्\u{200d}ष";
        assert_eq!(display_form(devanagari).unwrap(), devanagari);
        assert_eq!(display_form("Caf\u{200d}e\u{200c}").unwrap(), "Cafe");
        let ideographic_variant = "葛\u{E0100}城";
        assert_eq!(display_form(ideographic_variant).unwrap(), ideographic_variant);
    }

    #[test]
    fn an_invisible_character_after_white_space_is_never_kept() {
        // U+0600 takes the space after it into its grapheme cluster (GB9b); the selector
        // after that space shows nothing, and kept it would leave a space inside the text.
        assert_eq!(display_form("a\u{600} \u{fe00}").unwrap(), "a\u{600}");
        assert_eq!(display_form("a\u{600}\u{fe00}").unwrap(), "a\u{600}\u{fe00}");
    }

    /// Normalising (NFC, NFKC) composes and decomposes characters. The rules that say what a
    /// text holds (visible, white space, ignorable, refused; where an `@` or a `.` stands)
    /// must read the same before and after, or a rule stated on the text as sent (the OpenAPI
    /// document's patterns) would not be the parser's. A character and its canonical
    /// decomposition are read the same, for every code point; so every composition is too.
    #[test]
    fn canonical_normalisation_never_changes_what_these_rules_see() {
        let nfd = DecomposingNormalizerBorrowed::new_nfd();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let parts = nfd.normalize(c.encode_utf8(&mut [0; 4])).into_owned();
            if parts.chars().eq([c]) {
                continue;
            }
            assert_eq!(parts.chars().any(is_visible), is_visible(c), "{c:?}");
            assert_eq!(parts.chars().all(is_ignorable), is_ignorable(c), "{c:?}");
            assert_eq!(parts.chars().all(char::is_whitespace), c.is_whitespace(), "{c:?}");
            assert!(
                !parts
                    .chars()
                    .any(|p| is_refused(p) || p.is_whitespace() && !c.is_whitespace()),
                "{c:?}"
            );
            assert!(!parts.contains(['@', '.']), "{c:?}");
        }
    }

    #[test]
    fn texts_with_nothing_visible_are_blank() {
        for blank in [
            "",
            " \u{a0}\u{3000}",
            "\u{200b}",
            "\u{2800}",
            "\u{3164}\u{115f}\u{1160}\u{ffa0}",
            "\u{1d159}",
            "\u{feff}\u{2060}\u{200e}\u{ad}",
            "\u{301}",
            "\u{fe0f}\u{200d}",
        ] {
            assert!(is_blank(&display_form(blank).unwrap()), "{blank:?}");
        }
        for shown in ["a", "7", "-", "€", "🍋", "葛", "\u{e000}"] {
            assert!(!is_blank(shown), "{shown:?}");
        }
    }

    #[test]
    fn search_keys_ignore_case_and_accents() {
        let zoe = search_key("Zoë 🍋 Müller");
        for query in ["zoe", "ZOË", "Zoë", "MÜLLER", "muller", "zoe\u{a0}🍋"] {
            assert!(zoe.contains(&search_key(query)), "{query:?} in {zoe:?}");
        }
        assert_eq!(search_key("क्ष"), "क्ष".replace('\u{94d}', ""), "a virama is a diacritic");
        assert_eq!(search_key("किरण"), "किरण", "Indic vowel signs are letters, not accents");
    }

    /// Text that mixes what matters here: letters with and without accents (composed and
    /// not), white space of several kinds, ignorable characters, joiners, emoji and their
    /// selectors, Arabic and Devanagari.
    fn messy() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a",
            "É",
            "e\u{301}",
            "ß",
            "İ",
            "ǅ",
            "ﬁ",
            "Ｔ",
            "¨",
            " ",
            "\u{a0}",
            "\u{3000}",
            "\t",
            "\u{200b}",
            "\u{200c}",
            "\u{200d}",
            "\u{fe0f}",
            "\u{ad}",
            "\u{2060}",
            "\u{3164}",
            "\u{2800}",
            "👩",
            "🍳",
            "☕",
            "1",
            "\u{20e3}",
            "\u{e0067}",
            "\u{e007f}",
            "ی",
            "خ",
            "ل",
            "क",
            "\u{94d}",
            "ष",
            "\u{301}",
            "\u{308}",
            "\u{34f}",
            "葛",
            "\u{E0100}",
            "ω",
            "ᾳ",
            "ω\u{345}",
        ]);
        prop::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
    }

    /// Words in scripts with case, written in several ways, between spaces and invisibles.
    /// (Not [`messy`]: `to_uppercase` turns a Greek iota subscript, a mark, into a letter,
    /// which reorders the marks after it; that is another text, not the same one in capitals.)
    fn cased() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "Café",
            "Cafe\u{301}",
            "ß",
            "İstanbul",
            "ǅ",
            "ﬁ",
            "Ｔ",
            "ᾳ",
            "Σίσυφος",
            "Müller",
            " ",
            "\u{a0}",
            "\u{200b}",
            "👩\u{200d}🍳",
            "1",
        ]);
        prop::collection::vec(pieces, 0..8).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn the_display_form_is_its_own_display_form(raw in messy()) {
            let once = display_form(&raw).unwrap();
            prop_assert_eq!(display_form(&once).unwrap(), once);
        }

        #[test]
        fn a_text_and_its_display_form_have_one_key(raw in messy()) {
            let shown = display_form(&raw).unwrap();
            prop_assert_eq!(name_key(&shown), name_key(&raw));
            prop_assert_eq!(search_key(&shown), search_key(&raw));
        }

        #[test]
        fn case_never_makes_two_names(raw in cased()) {
            prop_assert_eq!(name_key(&raw.to_uppercase()), name_key(&raw.to_lowercase()));
        }

        #[test]
        fn a_blank_text_has_a_blank_display_form_and_the_reverse(raw in messy()) {
            prop_assert_eq!(is_blank(&display_form(&raw).unwrap()), is_blank(&raw));
        }

        #[test]
        fn a_display_form_has_no_edge_space_and_no_double_space(raw in messy()) {
            let shown = display_form(&raw).unwrap();
            prop_assert!(!shown.starts_with(' ') && !shown.ends_with(' ') && !shown.contains("  "));
            prop_assert!(!shown.chars().any(|c| c.is_whitespace() && c != ' '));
        }
    }
}
