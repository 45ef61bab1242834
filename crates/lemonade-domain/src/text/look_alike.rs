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
//! letter at a time ([`first_reading`]).

use std::collections::HashMap;
use std::sync::LazyLock;

use icu_casemap::CaseMapperBorrowed;
use icu_normalizer::DecomposingNormalizerBorrowed;
use icu_properties::CodePointMapData;
use icu_properties::props::{CanonicalCombiningClass, GeneralCategoryGroup, Script};
use icu_properties::script::ScriptWithExtensions;
use unicode_security::MixedScript;

use super::{category, script_of};

/// The letters of the scripts of [`WRITTEN_IN`] by their UTS #39 skeleton: of each skeleton
/// that two letters or more of any script have, or a Latin letter has (the letters a
/// prototype's base letter reads as, see [`readings`]). Built on first use from every letter
/// of Unicode (about 158,000, mostly Han: half a second in a debug build, a tenth of that
/// optimised) and kept for the life of the process (a few thousand letters).
static LETTERS: LazyLock<HashMap<String, Vec<char>>> = LazyLock::new(|| {
    let mut table: HashMap<String, Vec<char>> = HashMap::new();
    for c in (0..=char::MAX as u32)
        .filter_map(char::from_u32)
        .filter(|&c| is_letter(c))
    {
        table.entry(skeleton(c.encode_utf8(&mut [0; 4]))).or_default().push(c);
    }
    table.retain(|_, letters| {
        let shared = letters.len() > 1 || letters.iter().any(|&c| script_of(c) == Script::Latin);
        letters.retain(|&c| WRITTEN_IN.iter().any(|&script| is_of(c, script)));
        shared && !letters.is_empty()
    });
    table.shrink_to_fit();
    table
});

/// The letters of `script` whose skeleton is `shape`.
fn letters_of(script: Script, shape: &str) -> impl Iterator<Item = char> {
    LETTERS
        .get(shape)
        .into_iter()
        .flatten()
        .copied()
        .filter(move |&e| is_of(e, script))
}

fn skeleton(text: &str) -> String {
    unicode_security::skeleton(text).collect()
}

/// Whether the letter `c` is of `script`: its script, or one its `Script_Extensions` name (the
/// kana length mark `ー`, of no script of its own, is of Hiragana and Katakana).
fn is_of(c: char, script: Script) -> bool {
    ScriptWithExtensions::new().has_script(c, script)
}

/// Whether the letter `c` is one `script` writes with as it is: a letter [`is_of`] it, or of
/// no script at all (Common or Inherited, and no `Script_Extensions` that name one).
fn belongs_to(c: char, script: Script) -> bool {
    is_of(c, script)
        || ScriptWithExtensions::new()
            .get_script_extensions_val(c)
            .iter()
            .all(|s| !is_real_script(s))
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
    if !is_letter(c) || belongs_to(c, script) {
        return None;
    }
    let small = folded(c)?;
    let read = |shape: &str, form: fn(char) -> char| {
        letters_of(script, shape)
            .filter_map(folded)
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
/// the module's doc); `None` when `c` is not a letter, belongs to `script`, or looks like no
/// letter of it. A letter whose two cases look like the same letter, or only one of whose
/// cases looks like a letter, reads as that letter in both cases: `look_alike('М', Latin)` and
/// `look_alike('м', Latin)` are both `Some('m')`. One whose small form and capital look like
/// two different letters reads, in Latin, as the case it is written in: Greek `Ν` is `n`, `ν`
/// is `v` (else "Νova", which reads "Nova", would be "vova"); in any other script as none
/// (Latin `W` looks like Cyrillic `Ԝ`, but `w` like `ш`: "KIWI" and "kiwi" would otherwise be
/// two names once written in Cyrillic).
pub fn look_alike(c: char, script: Script) -> Option<char> {
    reading(c, script, script == Script::Latin)
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

/// Whether `c` is a letter that decides how its word reads: not one that case folding makes
/// several (ß, ᾳ), which is read after case folding instead.
fn deciding(c: char) -> bool {
    is_letter(c) && folded(c).is_some()
}

/// The scripts a word is written in by look-alikes (rule 1 of [`fold_word`]), in the order
/// they are tried: the alphabets of Europe, whose look-alikes names mix most, and the scripts
/// of Japanese, the kana before Han (a Katakana name such as "カト", whose letters all look
/// like Han, stays in kana, where a search in Hiragana finds it). Not the scripts whose
/// letters look like capitals of these (Cherokee, Lisu, Coptic): those are read as them,
/// never the other way, for a person reads such a letter in a name as the Latin or Greek
/// letter it looks like; and the look-alikes of three scripts do not always agree (Lisu `ꓪ`
/// is Latin `W` and Cyrillic `Ԝ`, though `w` is not `ԝ`), so that a word of one script tried
/// in too many could end in two.
const WRITTEN_IN: [Script; 6] = [
    Script::Latin,
    Script::Cyrillic,
    Script::Greek,
    Script::Hiragana,
    Script::Katakana,
    Script::Han,
];

/// The letter `c` as a search reads it, a letter at a time: written in the first script of
/// [`WRITTEN_IN`] that it is a letter of or reads as a letter of ([`look_alike`]):
/// Cyrillic `с` is `c`, Greek `π` is Cyrillic `п`, Han `口` is Katakana `ロ`. A letter of no
/// script of its own, or that is no letter, is itself.
pub fn first_reading(c: char) -> char {
    if !deciding(c) || !is_real_script(script_of(c)) {
        return c;
    }
    WRITTEN_IN
        .into_iter()
        .find_map(|script| match script == script_of(c) {
            true => Some(c),
            false => look_alike(c, script),
        })
        .unwrap_or(c)
}

/// `word` with each letter of another script than `script` written as the letter of `script`
/// it reads as ([`look_alike`]); `None` when a letter reads as none.
/// Letters that belong to `script` ([`belongs_to`]) are left as they are, and so is a
/// letter that case folding makes several when `script` can write what it makes (`ᾳ`, which
/// is `αι`, in Latin; not `ß`, which is `ss`, in Greek): the pass after case folding reads it.
fn written_in(word: &str, script: Script) -> Option<String> {
    let writes = |c: char| belongs_to(c, script);
    word.chars()
        .map(|c| match look_alike(c, script) {
            Some(d) => Some(d),
            None if !is_letter(c) || writes(c) => Some(c),
            None if folded(c).is_none() => {
                let made = CaseMapperBorrowed::new()
                    .fold_string(c.encode_utf8(&mut [0; 4]))
                    .into_owned();
                made.chars()
                    .all(|d| !is_letter(d) || writes(d) || look_alike(d, script).is_some())
                    .then_some(c)
            }
            None => None,
        })
        .collect()
}

/// The word `word` written in one script where a person reads it so:
/// 1. a word each of whose letters is of a script of [`WRITTEN_IN`] or looks like a letter of
///    it is written in that script; where several can write it, in the first of them (Latin,
///    Cyrillic, Greek, Hiragana, Katakana, Han). So Cyrillic "сок" and Latin
///    "cok", and the mixed "pах", are "cok"; Greek "ΠΙΤΑ" and Cyrillic "ПІТА" are "ПІТА";
///    Katakana "ロ" and Han "口" are "ロ". A word of one script is rewritten only here, and only
///    in a script whose letters look like each of its letters (Cyrillic "Сыр" stays);
/// 2. any other word that mixes scripts (UTS #39's single-script test, where Han, kana and
///    Hangul count as the writing systems they make together) is written in its main script:
///    the one that can write most of it; on a tie the one of most of its letters, then
///    Latin, then the first in ICU's order of scripts. Each letter of another script that
///    looks like a letter of the main one is written as it, but for a letter whose cases read
///    as two letters, left as it is ([`Pass::Folded`] only);
/// 3. every other word is left as it is.
///
/// A letter of no script of its own (Common, Inherited) belongs to the scripts its
/// `Script_Extensions` name (the kana length mark ー to the kana), or to every script
/// ([`belongs_to`]). A letter that case folding makes several (ß, ᾳ) decides nothing and is
/// left as it is; the pass after case folding reads what it became.
///
/// No word of Latin letters alone ever changes: UTS #39's look-alikes within one script ("rn"
/// and "m", "l" and "I") stay apart, and "Corn" and "Com" are two products.
pub fn fold_word(word: &str, pass: Pass) -> String {
    let letters = || word.chars().filter(|&c| deciding(c));
    if letters().all(|c| script_of(c) == Script::Latin) {
        return word.to_owned();
    }
    if let Some(written) = WRITTEN_IN.into_iter().find_map(|script| written_in(word, script)) {
        return written;
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
