// Text as a person reads it. A "character" on screen is a grapheme cluster (é, 🍋, 👩‍🍳, 🇬🇧),
// which may be several code points and more UTF-16 units: never index, slice or measure names
// by UTF-16 units (`s[0]`, `charAt`, `slice`, `length`). The rules mirror the server's
// (crates/lemonade-domain/src/text.rs), which has the last word.

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
const collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });

/** The grapheme clusters of `s`, in order. */
export function graphemes(s) {
  return Array.from(segmenter.segment(String(s ?? '')), (g) => g.segment);
}

/** Something a person can see: a letter, number, punctuation or symbol that is not ignorable
 * (zero-width, Hangul fillers) and not a blank glyph (U+2800, U+1D159). */
const VISIBLE = /(?![\p{Default_Ignorable_Code_Point}\u2800\u{1D159}])[\p{L}\p{N}\p{P}\p{S}\p{Co}\p{Cn}]/u;

/** What reads as a space: white space and the blank glyphs, which the server makes one space. */
const SPACES = /[\s\u2800\u{1D159}]+/u;

/** A letter or a digit. */
const LETTER_OR_DIGIT = /^[\p{L}\p{N}]/u;

/** Whether nothing in `s` is visible (the server refuses such a name like an empty one). */
export function isBlank(s) {
  return !VISIBLE.test(String(s ?? ''));
}

/** Whether `s` may be an email address: blank (none), or `local@domain` with no space inside,
 * read in its compatibility form as the server reads it ("ada＠example.org" is
 * "ada@example.org"). The server checks the rest and has the last word. */
export function looksLikeEmail(s) {
  if (isBlank(s)) return true;
  const [edge, inner] = [new RegExp(`^${SPACES.source}|${SPACES.source}$`, 'gu'), SPACES];
  const email = String(s).normalize('NFKC').replace(edge, '');
  return !inner.test(email) && /^[^@]+@[^@]+$/u.test(email);
}

/** `g` in capitals when that is still one character (ß stays ß rather than SS). */
function upper(g) {
  const u = g.toLocaleUpperCase();
  return graphemes(u).length === 1 ? u : g;
}

/** Avatar initials: the first letter or digit of each of the first two words that hold one,
 * past any punctuation before it ("Zoë 🍋 Müller" → "ZM", "(Bob) Smith" → "BS", "'Quoted' Name"
 * → "QN"), else the first visible character ("🍋" → "🍋"), else "?". Words are parted by white
 * space and blank glyphs ("⠀Zoë" → "Z"). */
export function initials(name) {
  const words = String(name ?? '').normalize('NFC').split(SPACES).filter((w) => !isBlank(w)).map(graphemes);
  const lettered = words.map((w) => w.find((g) => LETTER_OR_DIGIT.test(g))).filter(Boolean);
  if (lettered.length) return lettered.slice(0, 2).map(upper).join('');
  return words.length ? words[0].find((g) => !isBlank(g)) : '?';
}

/** The first character of `s` in capitals ("crm" → "Crm", "étude" → "Étude"). */
export function capitalise(s) {
  const [first = '', ...rest] = graphemes(s);
  return upper(first) + rest.join('');
}

/** At most `max` characters of `s`, with "…" when it was cut (never inside a character). */
export function truncate(s, max) {
  const g = graphemes(s);
  return g.length <= max ? String(s ?? '') : g.slice(0, Math.max(0, max - 1)).join('') + '…';
}

/** A file name part from `s` that keeps letters as a person reads them: its compatibility form
 * (NFKC: "ⓐ" is "a", "Ｚ" is "Z"), lower case, words joined by "-", anything but letters, marks
 * and digits dropped ("Zoë 🍋 Müller" → "zoë-müller", "ⓐbc" → "abc"); `fallback` when nothing
 * is left. At most 60 characters. */
export function fileSlug(s, fallback) {
  const slug = String(s ?? '').normalize('NFKC').toLocaleLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}]+/gu, '-').replace(/^-+|-+$/g, '');
  return graphemes(slug).slice(0, 60).join('').replace(/-+$/, '') || fallback;
}

/** Compares two names the way a person sorts them (the user's language; case, accents and
 * numbers as people expect: "item 2" before "item 10"). */
export function compareText(a, b) {
  return collator.compare(String(a ?? ''), String(b ?? ''));
}
