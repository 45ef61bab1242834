//! Letters of one script that look like letters of another (Cyrillic `а` and Latin `a`): what
//! makes two names that a person reads as one name out of letters of different scripts.
//!
//! The source is UTS #39's confusables (through `unicode-security`'s skeletons): two letters
//! look alike when they have one skeleton. A letter reads as the letter of the target script
//! that its small form looks like the small form of, or its capital the capital of. In Latin,
//! only letters Latin words are written with count (an ASCII letter, with or without marks),
//! and a prototype of a letter with marks below it reads as that letter (Greek `η`'s is `n`
//! with a line below), but not one with a mark above or through it (Cyrillic `Б`, a `b` with a
//! bar, is not `b`).
//! Where a letter's two cases read as one letter, or only one of them reads as a letter, the
//! letter reads so in both cases, so case does not decide: Cyrillic `М` looks like `M` though
//! `м` does not look like `m`, so both are `m`; Greek `σ` looks like `o` though `Σ` does not,
//! so both are `o`. Where they read as two letters (Greek `Ν` as `N` but `ν` as `v`, `Η` as
//! `H` but `η` as `n`), the letter reads as the case it is written in: that is what a person
//! reads, and any one letter for both cases would make "Νova" the same name as "Vova" and not
//! as "Nova". Where several letters of the target script look like it, the first is ASCII,
//! then the lowest code point.
//!
//! Used by [`super::name_key`] a word at a time ([`fold_words`]) and by [`super::search_key`] a
//! letter at a time ([`look_alike`]).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use icu_casemap::CaseMapperBorrowed;
use icu_normalizer::DecomposingNormalizerBorrowed;
use icu_properties::CodePointMapData;
use icu_properties::props::{CanonicalCombiningClass, GeneralCategoryGroup, Script};
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

/// `c` case-folded, when that is one character; `None` for a letter that case folding makes
/// several (`ß` is `ss`, `ᾳ` is `αι`), which is read after case folding instead (see
/// [`fold_words`]).
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
/// letters that no Latin word has. Nor is a letter with a stroke read as its bare letter (`ƀ`
/// as b, `ɵ` as o), as a collation at primary strength would: the stroke is what a reader sees
/// (Cyrillic Б is `b` with a bar, Greek θ an O with a stroke).
fn is_ascii_based(d: char) -> bool {
    let mut utf8 = [0; 4];
    let decomposed = DecomposingNormalizerBorrowed::new_nfd().normalize(d.encode_utf8(&mut utf8));
    decomposed.chars().next().is_some_and(|base| base.is_ascii_alphabetic())
}

/// How the letter `c` of another script reads in `script`: the letter its small form looks like
/// the small form of, and the letter its capital looks like the capital of (each case-folded;
/// ASCII first, then the lowest code point). `None` when `c` is not a letter or is of
/// `script`.
fn readings(c: char, script: Script) -> Option<(Option<char>, Option<char>)> {
    if !is_letter(c) || script_of(c) == script {
        return None;
    }
    let small = folded(c)?;
    let table = letters_of(script);
    let read = |shape: &str, form: fn(char) -> char| {
        table
            .get(shape)
            .into_iter()
            .flatten()
            .filter_map(|&e| folded(e))
            .filter(|&d| skeleton(&form(d).to_string()) == shape)
            .filter(|&d| script != Script::Latin || is_ascii_based(d))
            .min_by_key(|&d| (!d.is_ascii(), d))
    };
    // In Latin, a prototype no letter Latin words are written with has, made of one letter and
    // marks below it, reads as that letter: Greek η's prototype is n with a line below
    // (U+0329). Not with a mark above or through it: Cyrillic Б is b with a macron, Greek θ an
    // O with a stroke, Serbian ћ an h with a stroke, and those strokes are what a reader sees.
    let read_in = |form_of_c: char, form: fn(char) -> char| {
        let shape = skeleton(&form_of_c.to_string());
        read(&shape, form).or_else(|| {
            let mut chars = shape.chars();
            let base = chars.next()?;
            let below = |m: char| {
                is_mark(m)
                    && CodePointMapData::<CanonicalCombiningClass>::new().get(m) == CanonicalCombiningClass::Below
            };
            (script == Script::Latin && chars.all(below)).then_some(())?;
            let mut base_shape = String::new();
            base_shape.push(form(base));
            read(&skeleton(&base_shape), form)
        })
    };
    Some((read_in(small, |d| d), read_in(capital(small), capital)))
}

/// The letter of `script`, case-folded, that the letter `c` of another script reads as (see
/// the module's doc); `None` when `c` is not a letter, is of `script`, or looks like no letter
/// of it. A letter whose two cases look like the same letter, or only one of whose cases looks
/// like a letter, reads as that letter in both cases: `look_alike('М', Latin)` and
/// `look_alike('м', Latin)` are both `Some('m')`. One whose small form and capital look like
/// two different letters reads as the case it is written in: Greek `Ν` is `n`, `ν` is `v`
/// (else "Νova", which reads "Nova", would be "vova").
pub fn look_alike(c: char, script: Script) -> Option<char> {
    reading(c, script, true)
}

/// [`look_alike`]; when `as_written` is false, `None` for a letter whose two cases read as two
/// letters (so that where a word is written in a script only in part, case never decides).
fn reading(c: char, script: Script, as_written: bool) -> Option<char> {
    match readings(c, script)? {
        (Some(small), Some(capital)) if small != capital => match as_written {
            true if c.is_uppercase() => Some(capital),
            true => Some(small),
            false => None,
        },
        (Some(small), _) => Some(small),
        (None, capital) => capital,
    }
}

/// Which of [`fold_word`]'s rules a pass applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Rule 1 alone, on a text in the case it was written: a letter whose cases read as two
    /// letters is read as the case written (see [`look_alike`]).
    AsWritten,
    /// Every rule, on a case-folded text: what case folding made (ß is ss, ᾳ is αι) is read,
    /// and words that mix scripts are written in one, which no case can change.
    Folded,
}

/// `text` with each word (a run of letters and marks) that [`fold_word`] changes changed.
pub fn fold_words(text: &str, pass: Pass) -> String {
    let in_word = |c: char| is_letter(c) || is_mark(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(in_word) {
        out.push_str(&rest[..start]);
        let len = rest[start..].find(|c: char| !in_word(c)).unwrap_or(rest.len() - start);
        out.push_str(&fold_word(&rest[start..start + len], pass));
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
///    Hangul count as the writing systems they make together) is written in its main script:
///    of its scripts, one that can write all of it ("Cyп" with a Latin C and y is the
///    Cyrillic "Суп"), else the one that can write most of it; on a tie the one of most of
///    its letters, then Latin, then the first in ICU's order of scripts. Each letter of
///    another script that looks like a letter of the main one is written as it, but for a
///    letter whose cases read as two letters, left as it is ([`Pass::Folded`] only);
/// 3. every other word (of one script, not all of it like Latin) is left as it is.
///
/// A letter that case folding makes several (ß, ᾳ) decides nothing and is left as it is; the
/// pass after case folding reads what it became.
///
/// No word of Latin letters alone ever changes: UTS #39's look-alikes within one script ("rn"
/// and "m", "l" and "I") stay apart, and "Corn" and "Com" are two products.
pub fn fold_word(word: &str, pass: Pass) -> String {
    // A letter that case folding makes several (ß, ᾳ) decides nothing and is left as it is:
    // the second pass, after case folding, reads what it becomes.
    let deciding = |c: char| is_letter(c) && folded(c).is_some();
    let letters = || word.chars().filter(|&c| deciding(c));
    if letters().all(|c| script_of(c) == Script::Latin) {
        return word.to_owned();
    }
    let latin: Option<String> = word
        .chars()
        .map(|c| match look_alike(c, Script::Latin) {
            Some(d) => Some(d),
            None if !deciding(c) || script_of(c) == Script::Latin => Some(c),
            None => None,
        })
        .collect();
    if let Some(latin) = latin {
        return latin;
    }
    if pass == Pass::AsWritten || word.is_single_script() {
        return word.to_owned();
    }
    let mut counts: Vec<(Script, usize)> = Vec::new();
    for script in letters().map(script_of).filter(|&s| is_real_script(s)) {
        match counts.iter_mut().find(|(s, _)| *s == script) {
            Some((_, n)) => *n += 1,
            None => counts.push((script, 1)),
        }
    }
    let unread = |script: Script| {
        letters()
            .filter(|&c| script_of(c) != script && reading(c, script, false).is_none())
            .count()
    };
    let main = counts
        .iter()
        .map(|&(script, n)| {
            (
                std::cmp::Reverse(unread(script)),
                n,
                script == Script::Latin,
                std::cmp::Reverse(script),
            )
        })
        .max()
        .map(|(.., std::cmp::Reverse(script))| script);
    let Some(main) = main else {
        return word.to_owned();
    };
    word.chars().map(|c| reading(c, main, false).unwrap_or(c)).collect()
}
