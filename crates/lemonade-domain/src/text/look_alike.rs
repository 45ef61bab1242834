//! Letters of one script that look like letters of another (Cyrillic `а` and Latin `a`): what
//! makes two names that a person reads as one name out of letters of different scripts.
//!
//! The source is UTS #39's confusables (through `unicode-security`'s skeletons): two letters
//! look alike when they have one skeleton. A letter is judged with its case partner, so that
//! case never decides whether it looks like another: Cyrillic `М` looks like Latin `M` though
//! `м` does not look like `m`, so both are `m`; Greek `σ` looks like `o` though `Σ` does not,
//! so both are `o`. In Latin, only letters Latin words are written with count (an ASCII
//! letter, with or without marks). Where several letters of the target script look like it,
//! the one chosen is ASCII if one is, then one whose two cases both look alike, then one whose small letter does
//! (the Cyrillic palochka `ӏ` is `l`, though its capital looks like `I`), then the lowest code
//! point; so the choice is a function of the letter and the script alone.
//!
//! Used by [`super::name_key`] a word at a time ([`fold_words`]) and by [`super::search_key`] a
//! letter at a time ([`to_latin`]).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use icu_casemap::CaseMapperBorrowed;
use icu_normalizer::DecomposingNormalizerBorrowed;
use icu_properties::CodePointMapData;
use icu_properties::props::{GeneralCategoryGroup, Script};
use unicode_security::MixedScript;

use super::category;

/// The letters of one script, by their UTS #39 skeleton.
type ByPrototype = HashMap<String, Vec<char>>;

/// [`ByPrototype`] of each script asked for so far: built on first use, a script at a time
/// (Latin has about 1,500 letters; the whole of Unicode, mostly Han, about 140,000), and kept
/// for the life of the process (at most one table per script, about 170).
static TABLES: LazyLock<Mutex<HashMap<Script, &'static ByPrototype>>> = LazyLock::new(Default::default);

fn skeleton(text: &str) -> String {
    unicode_security::skeleton(text).collect()
}

fn script_of(c: char) -> Script {
    CodePointMapData::<Script>::new().get(c)
}

fn is_letter(c: char) -> bool {
    GeneralCategoryGroup::Letter.contains(category(c))
}

fn is_mark(c: char) -> bool {
    GeneralCategoryGroup::Mark.contains(category(c))
}

/// A script that letters belong to: not Common, Inherited or Unknown (`Zyyy`, `Zinh`, `Zzzz`).
fn is_real_script(script: Script) -> bool {
    !matches!(script, Script::Common | Script::Inherited | Script::Unknown)
}

fn letters_of(script: Script) -> &'static ByPrototype {
    let mut tables = TABLES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tables.entry(script).or_insert_with(|| {
        let mut table = ByPrototype::new();
        let ranges = CodePointMapData::<Script>::new().iter_ranges_for_value(script);
        for c in ranges
            .flat_map(|r| r.filter_map(char::from_u32))
            .filter(|&c| is_letter(c))
        {
            table.entry(skeleton(c.encode_utf8(&mut [0; 4]))).or_default().push(c);
        }
        Box::leak(Box::new(table))
    })
}

/// `c` case-folded, when that is one character.
fn folded(c: char) -> Option<char> {
    let mut utf8 = [0; 4];
    let folded = CaseMapperBorrowed::new().fold_string(c.encode_utf8(&mut utf8));
    let mut chars = folded.chars();
    match (chars.next(), chars.next()) {
        (Some(f), None) => Some(f),
        _ => None,
    }
}

/// The capital of the case-folded letter `f`, when that is one character (`f` itself when it
/// has no capital).
fn capital(f: char) -> char {
    let mut upper = f.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => f,
    }
}

/// Whether the Latin letter `d` is an ASCII letter, with or without marks (`e`, `é`, `ё`'s
/// look-alike `ë`): the letters Latin words are written with. The others (`ȹ`, `ɸ`, `ʃ`, `ĸ`)
/// are letters of phonetics and of a few languages, which UTS #39 gives as the prototypes of
/// letters such as Greek `φ`; taking them would write a Greek word such as "σίσυφος" in Latin
/// letters that no Latin word has.
fn is_ascii_based(d: char) -> bool {
    let mut utf8 = [0; 4];
    let decomposed = DecomposingNormalizerBorrowed::new_nfd().normalize(d.encode_utf8(&mut utf8));
    decomposed.chars().next().is_some_and(|base| base.is_ascii_alphabetic())
}

/// The letter of `script`, case-folded, that the letter `c` of another script looks like (see
/// the module's doc); `None` when `c` is not a letter, is of `script`, or looks like no letter
/// of it. Depends on `c` only through its case-folded form: `look_alike('М', Latin)` and
/// `look_alike('м', Latin)` are both `Some('m')`.
pub fn look_alike(c: char, script: Script) -> Option<char> {
    if !is_letter(c) || script_of(c) == script {
        return None;
    }
    let small = folded(c)?;
    let (small_shape, capital_shape) = (skeleton(&small.to_string()), skeleton(&capital(small).to_string()));
    let table = letters_of(script);
    let found = [&small_shape, &capital_shape]
        .into_iter()
        .filter_map(|shape| table.get(shape));
    found
        .flatten()
        .filter_map(|&e| folded(e))
        .filter(|&d| script != Script::Latin || is_ascii_based(d))
        .filter_map(|d| {
            let small_alike = skeleton(&d.to_string()) == small_shape;
            let capital_alike = skeleton(&capital(d).to_string()) == capital_shape;
            (small_alike || capital_alike).then_some((!d.is_ascii(), !(small_alike && capital_alike), !small_alike, d))
        })
        .min()
        .map(|(.., d)| d)
}

/// `text` with each letter of a script other than Latin that looks like a Latin letter written
/// as that letter, case-folded: what a search compares, so that a query typed in either script
/// finds a name written in the other, and the first letters of a name find it.
pub fn to_latin(text: &str) -> String {
    text.chars()
        .map(|c| look_alike(c, Script::Latin).unwrap_or(c))
        .collect()
}

/// `text` (case-folded) with each word (a run of letters and marks) that [`fold_word`] changes
/// changed.
pub fn fold_words(text: &str) -> String {
    let in_word = |c: char| is_letter(c) || is_mark(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(in_word) {
        out.push_str(&rest[..start]);
        let len = rest[start..].find(|c: char| !in_word(c)).unwrap_or(rest.len() - start);
        out.push_str(&fold_word(&rest[start..start + len]));
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// The word `word` written in one script where a person reads it so:
/// 1. a word with a letter of another script than Latin, each of whose letters is Latin or
///    looks like a Latin letter, is written in Latin letters: Cyrillic "сок" and Latin "cok",
///    Cyrillic "рах" and the mixed "pах", look the same and are one name;
/// 2. any other word that mixes scripts (UTS #39's single-script test, where Han, kana and
///    Hangul count as the writing systems they make together) is written in its main script
///    (the one of most of its letters; on a tie Latin, then the lowest ICU script code): each
///    letter of another script that looks like a letter of the main one is written as it;
/// 3. every other word (of one script, not all of it like Latin) is left as it is.
///
/// So no word of Latin letters alone ever changes: UTS #39's look-alikes within one script
/// ("rn" and "m", "l" and "I") stay apart, and "Corn" and "Com" are two products.
pub fn fold_word(word: &str) -> String {
    let letters = || word.chars().filter(|&c| is_letter(c));
    if letters().all(|c| script_of(c) == Script::Latin) {
        return word.to_owned();
    }
    let latin: Option<String> = word
        .chars()
        .map(|c| match look_alike(c, Script::Latin) {
            Some(d) => Some(d),
            None if !is_letter(c) || script_of(c) == Script::Latin => Some(c),
            None => None,
        })
        .collect();
    if let Some(latin) = latin {
        return latin;
    }
    if word.is_single_script() {
        return word.to_owned();
    }
    let mut counts: Vec<(Script, usize)> = Vec::new();
    for script in letters().map(script_of).filter(|&s| is_real_script(s)) {
        match counts.iter_mut().find(|(s, _)| *s == script) {
            Some((_, n)) => *n += 1,
            None => counts.push((script, 1)),
        }
    }
    let main = counts
        .iter()
        .max_by_key(|&&(script, n)| (n, script == Script::Latin, std::cmp::Reverse(script)))
        .map(|&(script, _)| script);
    let Some(main) = main else {
        return word.to_owned();
    };
    word.chars().map(|c| look_alike(c, main).unwrap_or(c)).collect()
}
