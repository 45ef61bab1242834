//! Text as a person reads it: the one home of the rules for names, notes and emails.
//!
//! Three forms of a text, each for one job:
//!
//! - [`display_form`] is what the shop stores and shows: Unicode NFC, every run of white space
//!   (NBSP, U+3000, tabs, ...) and blank glyphs ([`is_space`]) one U+0020, trimmed, and no
//!   invisible characters (`Default_Ignorable_Code_Point`: zero-width spaces, bidi marks, soft
//!   hyphens, Hangul fillers, ...), except where one changes what a person sees (see below).
//!   Punctuation stays as typed ("Grandma’s" is shown with its ’).
//! - [`name_key`] is what "the same name" means: the display form under Unicode's
//!   compatibility caseless match (The Unicode Standard, D146: NFKD and full case folding,
//!   twice), without variation selectors, and with the punctuation a person reads as one
//!   ([`punctuation_fold`]: dashes, apostrophes, quotation marks) made one. "Café T", "CAFÉ T",
//!   "Café T" written decomposed, "Café\u{200b} T", "Café\u{a0}T" and "Ｃａｆé Ｔ" have one key;
//!   so have "Grandma's", "Grandma’s" and "Grandmaʼs", and "Iced-tea", "Iced‐tea", "Iced–tea"
//!   and "Iced−tea".
//! - [`search_key`] is what a search compares: the name key as a collation at primary strength
//!   reads it (CLDR's root collation, the one the web app's `Intl.Collator` uses): without
//!   diacritics (`Diacritic` nonspacing marks) and joiners, and with each Latin letter that
//!   collation finds equal to one or two ASCII letters written as them ([`latin_base`]: ø is o,
//!   ł is l, đ is d, æ is ae), each letter of another script that looks like a Latin letter
//!   (or one of another script the name key writes words in first) written as it
//!   ([`look_alike::first_reading`]), and each kana as its Hiragana ([`kana_base`]). So "zoe",
//!   "ZOË" and "Zoë" find each other, "soren" finds "Søren", "Са" typed in Cyrillic finds
//!   "Cafe", and "らーめん" finds "ラーメン".
//!
//! A text is [`is_blank`] when nothing in it is [`is_visible`]: only white space, ignorable
//! characters, marks with no base, controls and format characters, or characters whose glyph
//! is empty ([`BLANK_GLYPHS`]).
//!
//! Invisible characters kept in the display form, because they change what is shown:
//! - the ZWJs and tag characters of an emoji sequence that Unicode recommends for general
//!   interchange (RGI, UTS #51: `👩‍🍳` is one picture, the flag of Scotland is 🏴 and five
//!   tags), and an emoji's variation selectors (when their grapheme cluster holds an
//!   `Extended_Pictographic` character, or, for U+FE0E/U+FE0F, follows an `Emoji` character
//!   such as a keycap's digit). Other ZWJs between emoji (`🍋‍🍋`) and other tags are removed:
//!   whether a font draws a sequence that is not RGI as one picture is up to the font, and the
//!   platforms the shop's tablets run on draw it as its parts, so a person reads `🍋‍🍋` as
//!   `🍋🍋` (and a tag sequence that is not RGI as its base, 🏴, as UTS #51 says it falls
//!   back). The RGI list is Unicode's emoji-test.txt, through the `emojis` crate ([`is_rgi`]);
//! - any other variation selector that follows a visible character in its grapheme cluster
//!   (ideographic variation sequences in CJK names);
//! - ZWJ and ZWNJ where IDNA allows them (RFC 5892, appendix A.1 and A.2: after a virama, and
//!   ZWNJ between joining letters), which is where they change the shape of Indic, Arabic and
//!   Persian words.
//!
//! Look-alike letters of other scripts (a Cyrillic `е` in "Cafе", the Cyrillic "Сок" and the
//! Latin "Cok") are one in the name and search keys ([`look_alike`], UTS #39's confusables,
//! a word at a time for names and a letter at a time for search): see [`name_key`].
//!
//! Whether a field takes a text is decided by what its characters are, one at a time
//! ([`is_refused`], [`is_visible`], [`is_ignorable`], [`is_space`], [`compatibility_char`]),
//! never by how normalising regroups them (a test proves that canonical normalisation changes
//! none of these): so each field's rule is a regular expression over these sets, which the
//! API's schemas (`lemonade_api::schema`) build from these very functions.
//!
//! The character data is ICU4X's (the Unicode Consortium's library): normalisation, case
//! folding, properties and collation come from one Unicode version; grapheme clusters (UAX
//! #29) and UTS #39's confusables from unicode-rs (`unicode-segmentation`,
//! `unicode-security`); the RGI emoji from `emojis`.

use std::collections::HashMap;
use std::sync::LazyLock;

use icu_casemap::CaseMapperBorrowed;
use icu_collator::CollatorBorrowed;
use icu_collator::options::{CollatorOptions, Strength};
use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};
use icu_properties::props::{
    CanonicalCombiningClass, Dash, DefaultIgnorableCodePoint, Diacritic, Emoji, ExtendedPictographic, GeneralCategory,
    GeneralCategoryGroup, JoiningType, PrependedConcatenationMark, Script, VariationSelector,
};
use icu_properties::{CodePointMapData, CodePointSetData};
use unicode_segmentation::UnicodeSegmentation;

pub mod look_alike;

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

/// Whether `c` reads as a space: white space (`White_Space`, as `char::is_whitespace`) or one
/// of [`BLANK_GLYPHS`]. The display form makes every run of these one U+0020 and trims them.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || BLANK_GLYPHS.contains(&c)
}

/// Whether `c` is drawn as nothing: a `Default_Ignorable_Code_Point` (zero-width spaces, bidi
/// marks, joiners, variation selectors, soft hyphens, Hangul fillers, ...), or a format
/// character (`Cf`) that is not one but draws nothing either (U+FFF9..U+FFFB, the interlinear
/// annotation marks; the Egyptian hieroglyph format controls), but for the prepended
/// concatenation marks (U+0600 ARABIC NUMBER SIGN and its kind), which draw a sign. The
/// display form removes these, except where one shows (see the module's doc).
pub fn is_ignorable(c: char) -> bool {
    CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
        || (category(c) == GeneralCategory::Format
            && !CodePointSetData::new::<PrependedConcatenationMark>().contains(c))
}

fn pictographic(c: char) -> bool {
    CodePointSetData::new::<ExtendedPictographic>().contains(c)
}

/// The script of `c` (`Script`, not its extensions).
fn script_of(c: char) -> Script {
    CodePointMapData::<Script>::new().get(c)
}

fn category(c: char) -> GeneralCategory {
    CodePointMapData::<GeneralCategory>::new().get(c)
}

/// Whether `c` alone shows something: a letter, number, punctuation or symbol, and not one of
/// [`BLANK_GLYPHS`] (nor a private-use or unassigned code point, which a text refuses:
/// [`is_refused`]).
/// A text [`is_blank`] when it holds none of these.
pub fn is_visible(c: char) -> bool {
    use GeneralCategory as G;
    !is_space(c)
        && !is_ignorable(c)
        && !matches!(
            category(c),
            G::Control
                | G::PrivateUse
                | G::Unassigned
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
/// white space (a tab or a line break is white space, which the display form makes a space),
/// a private-use character (`Co`: U+E000..U+F8FF and the two planes of them, which each
/// device draws as its fonts please, often as nothing), or a code point that Unicode has not
/// assigned (`Cn`, the noncharacters among them), which every device draws as the same empty
/// box, so that "A\u{378}" and "A\u{379}" would read as one name; but not one Unicode sets
/// aside to draw as nothing (`Default_Ignorable_Code_Point`, as U+2065), which is dropped as
/// the invisible characters are ([`is_ignorable`]).
pub fn is_refused(c: char) -> bool {
    (c.is_control() && !c.is_whitespace())
        || category(c) == GeneralCategory::PrivateUse
        || (category(c) == GeneralCategory::Unassigned && !is_ignorable(c))
}

/// Why a text that holds `c` is refused, when [`is_refused`]: the message of
/// [`display_form`] and the other parsers of text.
pub fn refusal(c: char) -> Option<String> {
    if !is_refused(c) {
        None
    } else if c.is_control() {
        Some("must not contain control characters".to_owned())
    } else {
        Some(format!(
            "must not contain private-use or unassigned characters (U+{:04X}), which each device \
             shows differently or as an empty box",
            u32::from(c)
        ))
    }
}

fn nfc(text: &str) -> String {
    ComposingNormalizerBorrowed::new_nfc().normalize(text).into_owned()
}

/// The display form of `raw` (see the module's doc). Refuses control characters other than
/// white space (a tab or a line break becomes a space).
pub fn display_form(raw: &str) -> Result<String, String> {
    if let Some(refusal) = raw.chars().find_map(refusal) {
        return Err(refusal);
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
        // A cluster that starts with a mark has no base: after a control (a tab) a mark starts
        // its own cluster, after the space the display form writes there it joins the space's.
        let has_base = !is_space(base)
            && !base.is_control()
            && !is_ignorable(base)
            && !GeneralCategoryGroup::Mark.contains(category(base));
        let pictographic = cluster.chars().any(pictographic);
        // White space joins a cluster only after a prepended mark such as U+0600 ARABIC
        // NUMBER SIGN (UAX #29, GB9b); what follows that space is not attached to the base.
        let mut after_space = false;
        let mut here = String::with_capacity(cluster.len());
        for (i, c) in cluster.chars().enumerate() {
            after_space |= is_space(c);
            let keep = !is_ignorable(c)
                || (i > 0 && has_base && !after_space && shows_in_context(c, base, pictographic, &chars, at + i));
            if keep {
                here.push(c);
            }
        }
        if pictographic {
            kept.push_str(&emoji_joins(&here));
        } else {
            kept.push_str(&here);
        }
        at += cluster.chars().count();
    }
    let mut spaced = String::with_capacity(kept.len());
    let mut gap = false;
    for c in kept.chars() {
        if is_space(c) {
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
/// an `Extended_Pictographic` character; its ZWJs and tags are then kept here and chosen by
/// [`emoji_joins`].
fn shows_in_context(c: char, base: char, emoji: bool, chars: &[char], at: usize) -> bool {
    if CodePointSetData::new::<VariationSelector>().contains(c) {
        return !matches!(c, '\u{FE0E}' | '\u{FE0F}') || emoji || CodePointSetData::new::<Emoji>().contains(base);
    }
    if emoji && (is_tag(c) || c == ZWJ) {
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

/// A tag character (U+E0020..U+E007F), which draws nothing but in an emoji tag sequence.
fn is_tag(c: char) -> bool {
    ('\u{E0020}'..='\u{E007F}').contains(&c)
}

/// Most emoji that an RGI emoji ZWJ sequence joins (a family of four; a test proves it).
const RGI_ZWJ_PARTS_MAX: usize = 4;

/// Whether `sequence` is an emoji that Unicode recommends for general interchange (RGI,
/// UTS #51: listed in emoji-test.txt, fully qualified or not), with or without its
/// emoji-presentation selectors (U+FE0F).
pub fn is_rgi(sequence: &str) -> bool {
    emojis::get(sequence).is_some()
        || sequence.contains('\u{FE0F}') && emojis::get(&sequence.replace('\u{FE0F}', "")).is_some()
}

/// The emoji grapheme cluster `cluster` with only the ZWJs and tag characters that make an
/// RGI emoji (see the module's doc): tags stay in a part (between ZWJs) that is an RGI tag
/// sequence; from the left, the longest run of parts that an RGI ZWJ sequence joins keeps its
/// ZWJs, and the ZWJs between runs go.
fn emoji_joins(cluster: &str) -> String {
    if !cluster.contains(|c| c == ZWJ || is_tag(c)) {
        return cluster.to_owned();
    }
    let parts: Vec<String> = cluster
        .split(ZWJ)
        .map(|part| {
            if part.contains(is_tag) && !is_rgi(part) {
                part.chars().filter(|&c| !is_tag(c)).collect()
            } else {
                part.to_owned()
            }
        })
        .collect();
    let joined = |run: &[String]| run.join("\u{200D}");
    let mut out = String::with_capacity(cluster.len());
    let mut first = 0;
    while first < parts.len() {
        let last = (first + 1..parts.len().min(first + RGI_ZWJ_PARTS_MAX))
            .rev()
            .find(|&last| {
                let run = &parts[first..=last];
                !run.iter().any(String::is_empty) && is_rgi(&joined(run))
            })
            .unwrap_or(first);
        out.push_str(&joined(&parts[first..=last]));
        first = last + 1;
    }
    out
}

/// Whether the first character of `side` that is not transparent joins towards the ZWNJ
/// (`towards` is L for the letter before it, R for the one after; D joins both ways).
fn joins<'a>(side: impl Iterator<Item = &'a char>, towards: JoiningType) -> bool {
    let types = CodePointMapData::<JoiningType>::new();
    side.map(|&c| types.get(c))
        .find(|&t| t != JoiningType::Transparent)
        .is_some_and(|t| t == towards || t == JoiningType::DualJoining)
}

/// The keyboard sign that a person reads `c` as, when `c` is another character (`None` for
/// any other, and for the keyboard's signs themselves). What it folds, and the source of each,
/// in the order they are tried (what a sign looks like before what it is: the swung dash `⁓`
/// is `~`, not `-`; the low quotation mark `‚` is `,`, not `'`):
/// - to `-`: the dashes, hyphens and minus signs, Unicode's `Dash` property (General_Category
///   Pd, and U+2212 MINUS SIGN, U+2053 SWUNG DASH and the super- and subscript minus);
/// - to `'` and `"`: punctuation, symbols and modifier letters (General_Category P, S, Lm;
///   never a letter of an alphabet such as the Hebrew yod) whose UTS #39 confusable prototype
///   is `'` (respectively `''`), or which CLDR's root collation finds equal to `'` (`"`) at
///   primary strength. The first finds the apostrophe-shaped marks (U+02BC MODIFIER LETTER
///   APOSTROPHE, U+2032 PRIME, ´, `), the second the quotation marks of every language
///   (U+2018, U+2019, U+201A, U+201B; U+201C..U+201F, 〝〞), as the web app's `Intl.Collator`
///   compares them.
///
/// - to a sign of a keyboard (ASCII or Latin-1 punctuation and symbols): the signs of no
///   script (Common) whose UTS #39 confusable prototype is that one sign: `⁄` and `∕` are `/`,
///   `∗` and `⁎` `*`, `꞉` and `∶` `:`, `᛭` `+`, `⋅`, `∙` and `•` `·`, `‹` `<`, `⁓` and `〜`
///   `~`, `⹀` and `゠` `=`, `‚` `,`, `∣`, `︱` and `│` `|` (whose prototype, and theirs, is
///   `l`), `⁒` `%`; and a sign of any script that looks like `'` or `"` (the Hebrew geresh
///   `׳` and gershayim `״`). What a person types on a keyboard is then the same name as what a
///   word processor or another keyboard wrote. Then, for the signs no prototype makes one:
///
/// Emoji (`Extended_Pictographic`, such as 〰) are pictures and never folded. Not folded
/// either: the look-alikes that belong to a script (U+06D4 ARABIC FULL STOP, which UTS #39
/// makes a hyphen), which a reader of the script reads as another sign; letters of a script
/// (the Canadian syllabics final `ᐩ`, though it looks like `+`); and signs whose prototype is
/// no keyboard sign (`■` and `∎`, box drawing, arrows), which UTS #39 likens for identifiers
/// but a reader tells apart by their size or weight.
pub fn punctuation_fold(c: char) -> Option<char> {
    use GeneralCategoryGroup as G;
    if c.is_ascii_alphanumeric() || matches!(c, '-' | '\'' | '"') {
        return None;
    }
    let group = category(c);
    let punctuation_or_symbol =
        G::Punctuation.contains(group) || G::Symbol.contains(group) || group == GeneralCategory::ModifierLetter;
    if !punctuation_or_symbol || pictographic(c) {
        return None;
    }
    let skeleton: String = unicode_security::skeleton(c.encode_utf8(&mut [0; 4])).collect();
    // First what it looks like (a dash shaped like `~` or `=` is that, a low quotation mark
    // shaped like a comma is a comma), then what it is.
    if let Some(&sign) = KEYBOARD_SIGNS.get(&skeleton)
        && sign != c
        && (sign == '\'' || sign == '"' || is_common(c))
    {
        return Some(sign);
    }
    if CodePointSetData::new::<Dash>().contains(c) {
        return Some('-');
    }
    let key = primary_key(c.encode_utf8(&mut [0; 4]));
    if key == *APOSTROPHE_KEY {
        Some('\'')
    } else if key == *QUOTATION_MARK_KEY {
        Some('"')
    } else {
        None
    }
}

/// The keyboard signs ([`is_keyboard_sign`]) by their UTS #39 skeleton, the lowest of the
/// signs of one skeleton first: `'` for `'`, `` ` `` and `´`, `"` for `''`, and `|` for `l`
/// (the prototype UTS #39 gives the bar, which the signs that look like it share: `∣`, `︱`,
/// `│`).
static KEYBOARD_SIGNS: LazyLock<HashMap<String, char>> = LazyLock::new(|| {
    let mut signs = HashMap::new();
    for c in ('\u{21}'..='\u{ff}').filter(|&c| is_keyboard_sign(c)) {
        signs
            .entry(unicode_security::skeleton(c.encode_utf8(&mut [0; 4])).collect())
            .or_insert(c);
    }
    signs
});

/// Whether `c` is a sign of a keyboard: ASCII or Latin-1 punctuation or symbol (`/`, `*`,
/// `·`, `°`).
fn is_keyboard_sign(c: char) -> bool {
    use GeneralCategoryGroup as G;
    let group = category(c);
    (c.is_ascii_punctuation() || ('\u{a1}'..='\u{ff}').contains(&c))
        && (G::Punctuation.contains(group) || G::Symbol.contains(group))
}

/// Whether `c` is of no script (`Zyyy`): a sign every script writes with.
fn is_common(c: char) -> bool {
    script_of(c) == Script::Common
}

/// `text` with every character that [`punctuation_fold`] folds folded.
fn fold_punctuation(text: &str) -> String {
    text.chars().map(|c| punctuation_fold(c).unwrap_or(c)).collect()
}

/// CLDR's root collation at primary strength: what a person ignores when they look for a word
/// (case, accents, the stroke of ø and ł; `Intl.Collator` with `sensitivity: 'base'`).
static PRIMARY: LazyLock<CollatorBorrowed<'static>> = LazyLock::new(|| {
    let mut options = CollatorOptions::default();
    options.strength = Some(Strength::Primary);
    CollatorBorrowed::try_new(Default::default(), options).expect("the root collation is compiled in")
});

/// The sort key of `text` under [`PRIMARY`]: two texts a primary-strength collation finds
/// equal have one key.
fn primary_key(text: &str) -> Vec<u8> {
    let mut key = Vec::new();
    let Ok(()) = PRIMARY.write_sort_key_to(text, &mut key);
    key
}

static APOSTROPHE_KEY: LazyLock<Vec<u8>> = LazyLock::new(|| primary_key("'"));
static QUOTATION_MARK_KEY: LazyLock<Vec<u8>> = LazyLock::new(|| primary_key("\""));

/// The strings of one or two ASCII letters, by their [`primary_key`] (the first of the
/// strings with one key, which are one letter before two).
static LATIN_BASES: LazyLock<HashMap<Vec<u8>, String>> = LazyLock::new(|| {
    let letters = || ('a'..='z').map(String::from);
    let pairs = letters().flat_map(|a| letters().map(move |b| format!("{a}{b}")));
    let mut bases = HashMap::new();
    for base in letters().chain(pairs) {
        bases.entry(primary_key(&base)).or_insert(base);
    }
    bases
});

/// The one or two ASCII letters that the Latin letter `c` is equal to at primary strength
/// ([`PRIMARY`]): `'ø'` is "o", `'ł'` "l", `'đ'` and `'ð'` "d", `'æ'` "ae", `'ħ'` "h".
/// `None` for ASCII, for letters of other scripts, and for Latin letters that CLDR's root
/// collation sorts as letters of their own (þ, ŋ, ı, ə). What it over-matches is what that
/// collation does: a Danish reader's ø and æ are letters of their own, and "soren" finds
/// "Søren"; a search that finds a little more is the kinder mistake at a counter.
pub fn latin_base(c: char) -> Option<&'static str> {
    if c.is_ascii() || script_of(c) != Script::Latin || !GeneralCategoryGroup::Letter.contains(category(c)) {
        return None;
    }
    LATIN_BASES
        .get(&primary_key(c.encode_utf8(&mut [0; 4])))
        .map(String::as_str)
}

/// The Hiragana letters by their [`primary_key`] (the first of the letters with one key).
static KANA_BASES: LazyLock<HashMap<Vec<u8>, char>> = LazyLock::new(|| {
    let mut bases = HashMap::new();
    for c in '\u{3041}'..='\u{3096}' {
        bases.entry(primary_key(c.encode_utf8(&mut [0; 4]))).or_insert(c);
    }
    bases
});

/// The Hiragana letter that the kana `c` is equal to at primary strength ([`PRIMARY`]): a
/// Katakana letter is its Hiragana (`'ラ'` is `'ら'`), a small or voiced kana the plain one
/// (`'ガ'`, `'が'` and `'ァ'` are `'か'`, `'か'` and `'あ'`), as a search typed in either kana
/// finds a name in the other. `None` for any other letter, and for a kana that is its own base.
pub fn kana_base(c: char) -> Option<char> {
    if !matches!(script_of(c), Script::Hiragana | Script::Katakana) {
        return None;
    }
    KANA_BASES
        .get(&primary_key(c.encode_utf8(&mut [0; 4])))
        .copied()
        .filter(|&base| base != c)
}

/// What "the same name" compares (see the module's doc). Never shown; total for any input.
///
/// Look-alike letters of different scripts (Latin `e` and Cyrillic `е`) are made one a word at
/// a time ([`look_alike::fold_word`]): "Cafе" typed with a Cyrillic `е` is "Cafe", "Мix" with a
/// Cyrillic `М` is "Mix", and the Cyrillic "Сок" is the Latin "Cok", which no one can tell
/// apart on a screen; but UTS #39's letter look-alikes within one script ("rn" and "m") are
/// never made one, and a word of another script that does not look Latin letter for letter
/// (the Cyrillic "Сыр") stays in its script.
pub fn name_key(raw: &str) -> String {
    let text: String = fold_punctuation(&shown(raw))
        .chars()
        .filter(|&c| !CodePointSetData::new::<VariationSelector>().contains(c))
        .collect();
    // Before case folding, which would lose the case a letter such as Greek Ν is read in, and
    // before compatibility forms, which make the lunate sigma ϲ (a c to the eye) a σ; after
    // the tonos is gone, which capitals do not write ("Ελιά", which is "ΕΛΙΑ", reads as
    // Cyrillic as its capitals do).
    let decomposed = DecomposingNormalizerBorrowed::new_nfd().normalize(&text).into_owned();
    let text = look_alike::fold_words(&nfc(&without_unwritten_marks(&decomposed)), look_alike::Pass::AsWritten);
    let key = caseless(&text);
    // Again, for the letters case folding makes (ᾳ is αι, ﬅ is st): it changes nothing in a word
    // the first pass wrote in one script; what it writes (a Greek ϲ, έ) is made caseless too.
    caseless(&look_alike::fold_words(&key, look_alike::Pass::Folded))
}

/// `text` as a compatibility caseless match compares it, composed (NFKC) to be compact:
/// D146, NFKD(toCasefold(NFKD(toCasefold(NFD(X))))), without the marks capitals do not
/// write, and with look-alike punctuation folded again (compatibility forms spell some in
/// parts: ‴ is three ′).
fn caseless(text: &str) -> String {
    let fold = |s: &str| CaseMapperBorrowed::new().fold_string(s).into_owned();
    let nfd = DecomposingNormalizerBorrowed::new_nfd();
    let nfkd = DecomposingNormalizerBorrowed::new_nfkd();
    let once = nfkd.normalize(&fold(&nfd.normalize(text))).into_owned();
    let twice = without_unwritten_marks(&nfkd.normalize(&fold(&once)));
    fold_punctuation(&ComposingNormalizerBorrowed::new_nfkc().normalize(&twice))
}

/// `decomposed` (case-folded, NFKD) without the marks that capitals do not write, so that a
/// name and its capitals are one name: the dot of a Turkish `İ` (case folding makes it `i` and
/// U+0307, where the small letter is a plain `i`), and the Greek tonos (U+0301 on a Greek
/// letter), which Greek spelling leaves off capitals ("ΕΛΙΑ" is "Ελιά" in capitals). A pair
/// of Greek words told apart by the tonos alone ("πότε", "ποτέ") is one name, as it is one
/// word in capitals.
fn without_unwritten_marks(decomposed: &str) -> String {
    let mut out = String::with_capacity(decomposed.len());
    let mut base = None;
    for c in decomposed.chars() {
        let mark = GeneralCategoryGroup::Mark.contains(category(c));
        let unwritten = match (base, c) {
            (Some('i'), '\u{307}') => true,
            (Some(b), '\u{301}') => script_of(b) == Script::Greek,
            _ => false,
        };
        if !mark {
            base = Some(c);
        }
        if !unwritten {
            out.push(c);
        }
    }
    out
}

/// What a search compares (see the module's doc). Never shown; total for any input.
pub fn search_key(raw: &str) -> String {
    let key = name_key(raw);
    let decomposed = DecomposingNormalizerBorrowed::new_nfd().normalize(&key).into_owned();
    let mut bare = String::with_capacity(decomposed.len());
    for c in decomposed.chars() {
        let diacritic =
            CodePointSetData::new::<Diacritic>().contains(c) && category(c) == GeneralCategory::NonspacingMark;
        if diacritic || is_ignorable(c) {
            continue;
        }
        // A letter of another script that looks like a letter of Latin (or of another script
        // first in the name key's order) is that letter, one at a time (not a word at a time
        // as in the name key), so a name's first letters find it.
        let c = look_alike::first_reading(c);
        // The Turkish dotless ı, which the root collation keeps apart from i: a search typed
        // without Turkish letters ("YILMAZ", read as "yilmaz") finds "Yılmaz".
        let c = if c == 'ı' { 'i' } else { c };
        let c = kana_base(c).unwrap_or(c);
        match latin_base(c) {
            Some(base) => bare.push_str(base),
            None => bare.push(c),
        }
    }
    nfc(&bare)
}

/// `c` in its compatibility form (NFKC): `'Ａ'` is "A", `'＠'` is "@", `'ﬁ'` is "fi", `'…'`
/// is "...", `'a'` is "a".
pub fn compatibility_form(c: char) -> String {
    // Unassigned and private-use code points have no decomposition (a stability guarantee of
    // Unicode's normalisation): most code points, so this keeps a walk over all of them quick.
    if matches!(category(c), GeneralCategory::Unassigned | GeneralCategory::PrivateUse) {
        return c.to_string();
    }
    ComposingNormalizerBorrowed::new_nfkc()
        .normalize(c.encode_utf8(&mut [0; 4]))
        .into_owned()
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

    /// A blank glyph (U+2800, U+1D159) draws nothing, as a space draws nothing: it is a space
    /// where it stands between words, and nothing at either end.
    #[test]
    fn blank_glyphs_read_as_spaces() {
        for (raw, shown) in [
            ("\u{2800}Lemonade", "Lemonade"),
            ("Lemonade\u{2800}", "Lemonade"),
            ("Pink\u{2800}lemonade", "Pink lemonade"),
            ("Pink \u{2800}\u{1d159} lemonade", "Pink lemonade"),
            ("Iced tea\u{1d159}", "Iced tea"),
        ] {
            assert_eq!(display_form(raw).unwrap(), shown, "{raw:?}");
            assert_eq!(name_key(raw), name_key(shown), "{raw:?}");
        }
        assert!(is_space('\u{2800}') && is_space('\u{a0}') && !is_space('a'));
    }

    /// Punctuation a person reads as one sign has one key (the cases: iOS smart
    /// punctuation types ’, a word processor –), and the display form keeps what was typed.
    #[test]
    fn look_alike_punctuation_has_one_key_and_is_shown_as_typed() {
        let groups: [&[&str]; 11] = [
            &["Lemon 1/2", "Lemon 1⁄2", "Lemon 1∕2", "Lemon ½"],
            &["Tea·Lemon", "Tea⋅Lemon", "Tea∙Lemon", "Tea•Lemon"],
            &["Tea*", "Tea∗", "Tea⁎", "Tea＊"],
            &["Tea 10:30", "Tea 10꞉30", "Tea 10∶30"],
            &[
                "Grandma's lemonade",
                "Grandma’s lemonade",
                "Grandma‘s lemonade",
                "Grandma‛s lemonade",
                "Grandmaʼs lemonade",
                "Grandma′s lemonade",
                "Grandma＇s lemonade",
                "Grandma´s lemonade",
                "Grandma`s lemonade",
                "Grandma׳s lemonade",
            ],
            // Found by a fifth tester: signs read by what they look like before what they are.
            &["Lemon,lime", "Lemon‚lime", "Lemon，lime"],
            &["X~Y", "X⁓Y", "X〜Y", "X～Y"],
            &["X=Y", "X⹀Y", "X゠Y"],
            &["Mix|Max", "Mix∣Max", "Mix︱Max", "Mix│Max"],
            &[
                "Iced-tea",
                "Iced‐tea",
                "Iced‑tea",
                "Iced‒tea",
                "Iced–tea",
                "Iced—tea",
                "Iced―tea",
                "Iced−tea",
                "Iced⁻tea",
                "Iced－tea",
                "Iced﹣tea",
                "Iced⸺tea",
            ],
            &[
                "\"Best\" lemonade",
                "“Best” lemonade",
                "„Best“ lemonade",
                "‟Best” lemonade",
                "＂Best＂ lemonade",
                "″Best″ lemonade",
                "〝Best〞 lemonade",
            ],
        ];
        for group in groups {
            for same in group {
                assert_eq!(name_key(same), name_key(group[0]), "{same:?}");
                assert_eq!(display_form(same).unwrap(), *same, "shown as typed");
            }
        }
        assert_eq!(name_key("a‴b"), "a'''b", "a compatibility form spelt in parts");
        assert_eq!(search_key("Grandma’s"), search_key("grandma's"));
    }

    /// What the fold leaves alone: letters (Hebrew yod, the saltillo, Runic, Canadian
    /// syllabics), punctuation a reader of its script reads as another sign (the Arabic full
    /// stop, which UTS #39 likens to a hyphen), emoji, and signs of their own.
    #[test]
    fn the_punctuation_fold_leaves_letters_emoji_and_other_signs_alone() {
        for c in [
            'י', 'ꞌ', 'ᛌ', 'ᑊ', 'ᐩ', '۔', '〰', '➖', '=', '~', ',', '.', '«', '■', '→', 'a', '1', '-', '\'', '"', '/',
            '*',
        ] {
            assert_eq!(punctuation_fold(c), None, "{c:?}");
        }
        for (c, folded) in [
            ('’', '\''),
            ('ʼ', '\''),
            ('′', '\''),
            ('—', '-'),
            ('−', '-'),
            ('“', '"'),
            ('„', '"'),
            // Found by a third tester.
            ('⁄', '/'),
            ('∕', '/'),
            ('⋅', '·'),
            ('∙', '·'),
            ('∗', '*'),
            ('⁎', '*'),
            ('꞉', ':'),
            ('‹', '<'),
            ('⁓', '~'),
            ('〜', '~'),
            ('⹀', '='),
            ('゠', '='),
            ('‚', ','),
            // Found by a sixth: the bar's look-alikes, whose prototype (and the bar's) is `l`.
            ('∣', '|'),
            ('︱', '|'),
            ('│', '|'),
            ('⁒', '%'),
        ] {
            assert_eq!(punctuation_fold(c), Some(folded), "{c:?}");
        }
        // Every folded character folds to a keyboard sign, and is no letter of an alphabet.
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            if let Some(folded) = punctuation_fold(c) {
                assert!(is_keyboard_sign(folded) && punctuation_fold(folded).is_none(), "{c:?}");
                let group = category(c);
                assert!(
                    !GeneralCategoryGroup::Letter.contains(group) || group == GeneralCategory::ModifierLetter,
                    "{c:?}"
                );
            }
        }
    }

    #[test]
    fn the_display_form_is_nfc_with_one_kind_of_space_and_nothing_invisible() {
        assert_eq!(display_form("Cafe\u{301}\u{a0}\u{200b}T ").unwrap(), CAFE_T);
        assert_eq!(display_form("\u{2060}a\u{ad}b\u{200f}\n\n c\u{3164}").unwrap(), "ab c");
        // Format characters that draw nothing though not ignorable go too; a prepended
        // concatenation mark, which draws a sign, stays.
        assert_eq!(display_form("Tea\u{fff9}\u{fffb}\u{13430}").unwrap(), "Tea");
        assert_eq!(display_form("\u{600}12").unwrap(), "\u{600}12");
        assert_eq!(
            display_form("a\u{7}b").unwrap_err(),
            "must not contain control characters"
        );
        // Found by a third tester: characters each device shows as it pleases, or as one box.
        for refused in [
            "\u{e000}",
            "A\u{e000}B",
            "\u{378}",
            "\u{ffff}",
            "\u{10ffff}",
            "\u{f0000}",
        ] {
            let message = display_form(refused).unwrap_err();
            assert!(message.contains("private-use or unassigned"), "{refused:?}: {message}");
        }
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
        // Minimally qualified (no U+FE0F) is still the one picture.
        assert_eq!(display_form("❤\u{200d}🔥").unwrap(), "❤\u{200d}🔥");
        assert_eq!(name_key("❤\u{fe0f}\u{200d}🔥"), name_key("❤\u{200d}🔥"));
    }

    /// A ZWJ between emoji that no RGI sequence joins, and tag characters outside an RGI tag
    /// sequence, draw nothing: they are not kept, so they cannot make a new name.
    #[test]
    fn joiners_and_tags_that_make_no_rgi_emoji_are_removed() {
        let trio = "Lemon trio 🍋🍋";
        for raw in [
            "Lemon trio 🍋\u{200d}🍋",
            "Lemon trio 🍋🍋\u{e0020}",
            "Lemon trio 🍋\u{e0041}🍋",
            "Lemon trio 🍋\u{200d}\u{200d}🍋",
            "Lemon trio 🍋🍋\u{200d}",
            "Lemon trio \u{200d}🍋🍋",
        ] {
            assert_eq!(display_form(raw).unwrap(), trio, "{raw:?}");
            assert_eq!(name_key(raw), name_key(trio), "{raw:?}");
        }
        // The longest RGI run from the left keeps its joiners; the rest go.
        assert_eq!(display_form("👩\u{200d}🍳\u{200d}🍋").unwrap(), "👩\u{200d}🍳🍋");
        assert_eq!(
            display_form("👨\u{200d}👩\u{200d}👧\u{200d}👦\u{200d}🍋").unwrap(),
            "👨\u{200d}👩\u{200d}👧\u{200d}👦🍋"
        );
        // A tag sequence that is not RGI (California) shows its base alone, as UTS #51 says.
        assert_eq!(
            display_form("🏴\u{e0075}\u{e0073}\u{e0063}\u{e0061}\u{e007f}").unwrap(),
            "🏴"
        );
    }

    /// [`RGI_ZWJ_PARTS_MAX`] bounds every RGI ZWJ sequence, skin tones included.
    #[test]
    fn no_rgi_zwj_sequence_joins_more_parts_than_the_bound() {
        let parts = |e: &emojis::Emoji| e.as_str().split(ZWJ).count();
        let most = emojis::iter()
            .flat_map(|e| std::iter::once(e).chain(e.skin_tones().into_iter().flatten()))
            .map(parts)
            .max();
        assert_eq!(most, Some(RGI_ZWJ_PARTS_MAX));
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

    /// Found by the property tests: a virama after a tab starts a cluster of its own, and was
    /// taken for a base that keeps the ZWNJ after it; written again, the tab is a space, whose
    /// cluster the virama joins, and the ZWNJ went.
    #[test]
    fn a_joiner_after_a_mark_with_no_base_is_never_kept() {
        assert_eq!(display_form("ی\t\u{94d}\u{200c}").unwrap(), "ی \u{94d}");
        assert_eq!(display_form("ی \u{94d}\u{200c}").unwrap(), "ی \u{94d}");
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
            assert_eq!(parts.chars().all(is_space), is_space(c), "{c:?}");
            assert!(
                !parts.chars().any(|p| is_refused(p) || is_space(p) && !is_space(c)),
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
        for shown in ["a", "7", "-", "€", "🍋", "葛"] {
            assert!(!is_blank(shown), "{shown:?}");
        }
        // Nor does a character a text refuses count as something shown.
        assert!(is_blank("\u{e000}\u{378}") && display_form("\u{e000}").is_err());
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

    /// Letters of other scripts that look like the letters of a name make the same name,
    /// whichever script has more of its letters, whatever their case, and on a tie; a word of
    /// one script that does not look Latin letter for letter, and look-alikes within one script,
    /// are left alone.
    #[test]
    fn look_alike_letters_of_another_script_make_the_same_name() {
        for (look_alike, same) in [
            ("Cafе", "Cafe"),
            ("CAFЕ", "cafe"),
            ("Kоffee Bar", "Koffee Bar"),
            ("Müllеr", "Müller"),
            ("рaypal", "paypal"),
            // Found by a tester: the capital looks Latin though the small letter does not (М, К),
            // the capital looks like another letter than the small one (І is I and l), a tie
            // between the scripts (Ха, Реpe, Beӏӏ, Саfé), the other script in the majority (Pах).
            ("Мix", "Mix"),
            ("Кiwi", "Kiwi"),
            ("Іce", "Ice"),
            ("Хa", "Xa"),
            ("Pах", "Pax"),
            ("Реpe", "Pepe"),
            ("Beӏӏ", "Bell"),
            ("Саfé T", "Café T"),
            ("Соm", "Com"),
            // A word of another script that looks Latin letter for letter reads as Latin.
            ("Сок", "Cok"),
            ("ТАХI", "Taxi"),
            // Found by a second tester: letters whose cases read as two letters (Ν is N, ν is v;
            // η is n), the lunate sigma (a c, which compatibility forms make σ), and a mixed word
            // that only its minority script can write whole.
            ("ΝΕΟ", "NEO"),
            ("ΝΙΝΑ", "NINA"),
            ("Νova", "Nova"),
            ("ϲola", "cola"),
            ("Ϲola", "Cola"),
            ("ηut", "nut"),
            ("Cyп", "Суп"),
            // Marks capitals do not write: the Turkish İ's dot, the Greek tonos.
            ("İçecek", "içecek"),
            // Format characters that draw nothing, though not ignorable.
            ("Tea\u{fff9}", "Tea"),
            ("Tea\u{13430}", "Tea"),
            ("Ελιά", "ΕΛΙΑ"),
            ("Οδός", "ΟΔΟΣ"),
            ("Cыp", "Сыр"),
            // Case never decides: σ looks like o, so its capital Σ is o too (else "ΣIGMA" and
            // "σigma" would be one name, and "σigma" and "oigma" another).
            ("ΣIGMA", "OIGMA"),
            // Found by a third tester: words of two other scripts than Latin that look alike
            // letter for letter (Greek and Cyrillic; kana and Han).
            ("ΠΙΤΑ", "ПІТА"),
            ("πιτα", "піта"),
            ("Πίτα", "ПІТА"),
            ("ΦΑΡΜΑ", "ФАРМА"),
            ("φαρμα", "фарма"),
            ("ΛΑΜΑ", "ЛАМА"),
            ("λαμα", "лама"),
            ("カ", "力"),
            ("ロ", "口"),
            ("ハ", "八"),
            ("エ", "工"),
            ("力レー", "カレー"),
            ("口ーラ", "ローラ"),
            // Found by a fourth: the Han numeral one for the kana length mark.
            ("ラ一メン", "ラーメン"),
            ("一", "ー"),
        ] {
            assert_eq!(name_key(look_alike), name_key(same), "{look_alike:?}");
            assert_eq!(search_key(look_alike), search_key(same), "{look_alike:?}");
        }
        for (one, other) in [
            ("Corn", "Com"), // rn and m look alike, within one script
            ("Cola 1", "Cola l"),
            ("Νova", "Vova"), // Ν reads N, ν reads v
            ("Νερο", "Vepo"),
            ("ηut", "Hut"), // η reads n, Η reads H
            // Found by a third tester: a letter with a stroke or a bar is not the bare letter.
            ("Бок", "Вок"),
            ("Соба", "Сова"),
            ("Μέση", "Μέθη"),
            ("Νόσος", "Νόθος"),
            ("Кућа", "Куна"),
            ("ılık", "ilik"), // Turkish: lukewarm, marrow
            ("Сыр", "Cьıp"),  // ы looks like no Latin letter: the word stays Cyrillic...
        ] {
            assert_ne!(name_key(one), name_key(other), "{one:?}");
        }
        // ...and a Latin letter in it is written in Cyrillic (rule 2 of `fold_word`).
        assert_eq!(name_key("Cыр"), name_key("Сыр"));
        assert_eq!(name_key("Tシャツ"), "tシャツ", "Latin and kana mix in Japanese");
        assert_eq!(
            name_key("Σίσυφος"),
            "оіоуфоо",
            "a Greek word that does not look Latin, in the Cyrillic letters that look like its \
             own (and without its tonos, which capitals leave off)"
        );
    }

    /// A search typed in one script finds a name written in look-alike letters of another, and
    /// the first letters of a name written in another script find it.
    #[test]
    fn search_finds_look_alike_letters_of_another_script() {
        assert!(search_key("İpek Yılmaz").contains(&search_key("YILMAZ")));
        assert!(search_key("Сыр Саша").contains(&search_key("Са")));
        assert!(search_key("Cafe").contains(&search_key("Саf")));
        assert!(search_key("Саша").starts_with(&search_key("Ca")));
        assert!(search_key("ΠΙΤΑ Ελιά").starts_with(&search_key("Пі")));
        assert!(search_key("ПІТА").starts_with(&search_key("πι")));
        assert!(search_key("力レー").starts_with(&search_key("カ")));
        // Found by a third tester: Hiragana finds Katakana, as at primary strength.
        assert!(search_key("ラーメン屋").contains(&search_key("らーめん")));
        assert!(search_key("カト").contains(&search_key("かと")));
        assert!(search_key("ガスト").contains(&search_key("かす")));
    }

    /// A letter of another script reads as one letter in both cases when its cases look like one
    /// letter, or only one of them looks like a letter; as the case it is written in when they
    /// look like two.
    #[test]
    fn how_a_letter_of_another_script_reads() {
        use icu_properties::props::Script;
        for (c, latin) in [
            ('М', 'm'),
            ('м', 'm'),
            ('І', 'i'),
            ('і', 'i'),
            ('σ', 'o'),
            ('Σ', 'o'),
            ('ϲ', 'c'),
            ('Ϲ', 'c'),
            // Two letters: read as written.
            ('ӏ', 'l'),
            ('Ӏ', 'i'),
            ('Ν', 'n'),
            ('ν', 'v'),
            ('Η', 'h'),
            ('η', 'n'),
        ] {
            assert_eq!(look_alike::look_alike(c, Script::Latin), Some(latin), "{c:?}");
        }
        assert_eq!(
            look_alike::look_alike('m', Script::Latin),
            None,
            "a letter of the script itself"
        );
        assert_eq!(look_alike::look_alike('ы', Script::Latin), None);
        assert_eq!(look_alike::look_alike('C', Script::Cyrillic), Some('с'));
    }

    /// Letters whose marks do not decompose (ø, ł, đ) and ligatures (æ, œ) are found by their
    /// base letters, as a collation at primary strength finds them.
    #[test]
    fn search_keys_fold_latin_letters_as_a_primary_strength_collation_does() {
        for (name, query) in [
            ("Søren Ærø", "soren"),
            ("Søren Ærø", "aero"),
            ("Łukasz", "lukasz"),
            ("Đorđe", "dorde"),
            ("Œuvre", "oeuvre"),
            ("Ħamrun", "hamrun"),
            ("Ǿrsted", "orsted"),
        ] {
            assert!(search_key(name).contains(&search_key(query)), "{query:?} in {name:?}");
        }
        assert_eq!(search_key("Søren Ærø"), "soren aero");
        // Letters of their own in CLDR's root collation stay themselves, and other scripts
        // are not transliterated.
        for own in ['þ', 'ı', 'ə', 'д'] {
            assert_eq!(latin_base(own), None, "{own:?}");
        }
        assert_eq!(search_key("Þór"), "þor");
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
            "\u{1d159}",
            "’",
            "–",
            "ø",
            "Æ",
            "🍋",
            "\u{e0041}",
            "🏴",
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
            "Сafе",
            // Not the palochka ӏ (an l) nor Greek ν (a v), whose capitals read as I and N:
            // those are read in the case written (see `look_alike`).
            "Мix",
            "Іce",
            "кiwi",
            "Сок",
            "Σ",
            "ο",
            "Ι",
            "’",
            // Words that other scripts than Latin can write (Cyrillic, Greek, kana and Han).
            "Πίτα",
            "лама",
            "φ",
            "ε",
            "w",
            "カ力",
        ]);
        prop::collection::vec(pieces, 0..8).prop_map(|p| p.concat())
    }

    /// A Latin word, and the same word with some of its letters written as a Cyrillic or Greek
    /// letter that reads as them in the case written; the Latin letters in either case.
    fn latin_word_and_look_alike() -> impl Strategy<Value = (String, String)> {
        use icu_properties::props::Script;
        // (the Latin letter as it reads, in its case; the letter that reads so)
        static SWAPS: LazyLock<Vec<(char, char)>> = LazyLock::new(|| {
            let others = ('\u{370}'..='\u{3FF}').chain('\u{400}'..='\u{4FF}');
            others
                // A compatibility character is judged by its compatibility form (ϵ is ε).
                .filter(|&c| compatibility_form(c) == c.to_string())
                .filter_map(|c| {
                    let latin = look_alike::look_alike(c, Script::Latin).filter(char::is_ascii)?;
                    Some((
                        if c.is_uppercase() {
                            latin.to_ascii_uppercase()
                        } else {
                            latin
                        },
                        c,
                    ))
                })
                .collect()
        });
        let letters: Vec<char> = SWAPS.iter().map(|&(d, _)| d).collect();
        let word = prop::collection::vec(prop::sample::select(letters), 1..8);
        (word, prop::collection::vec(any::<(bool, bool)>(), 8)).prop_map(|(word, flips)| {
            let (mut latin, mut other) = (String::new(), String::new());
            for (&d, &(swap, flip)) in word.iter().zip(flips.iter().cycle()) {
                let swapped = SWAPS.iter().find(|&&(l, _)| l == d).map(|&(_, c)| c);
                match swapped {
                    Some(c) if swap => other.push(c),
                    // Not swapped: the Latin letter, in either case.
                    _ if flip => other.push(if d.is_ascii_uppercase() {
                        d.to_ascii_lowercase()
                    } else {
                        d.to_ascii_uppercase()
                    }),
                    _ => other.push(d),
                }
                latin.push(d);
            }
            (latin, other)
        })
    }

    proptest! {
        #[test]
        fn a_word_with_look_alike_letters_of_another_script_is_the_same_name((latin, other) in latin_word_and_look_alike()) {
            prop_assert_eq!(name_key(&latin), name_key(&other), "{:?} {:?}", latin, other);
            prop_assert!(search_key(&other).contains(&search_key(&latin)));
        }

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
