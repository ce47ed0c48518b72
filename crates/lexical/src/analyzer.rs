//! Text → terms, the same way for documents and questions.
//!
//! The steps, in this order (the order is what the relevance study measured;
//! `docs/text-search.md` has the figures):
//! 1. Unicode NFKC (full-width letters, ligatures and compatibility forms become plain ones);
//! 2. lower-casing (`str::to_lowercase`);
//! 3. accent folding: NFD, every mark (general category M) dropped, NFC, then a few letters
//!    without a decomposition (`ø→o`, `æ→ae`, `ß→ss`, …). Folding *before* stemming makes a
//!    question typed without accents ("eletronica") analyse exactly like one with them
//!    ("eletrônica"); the Portuguese stemmer's suffixes carry accents, so the other order does not;
//! 4. tokens: maximal runs of alphanumeric characters (`char::is_alphanumeric`), so
//!    apostrophes, hyphens and dots split words;
//! 5. stop words: the Snowball list of the language, itself folded (`não` and `nao` both go);
//! 6. the Snowball stemmer of the language.
//!
//! [`Language::None`] stops after step 4. Terms are kept with their
//! multiplicity and in text order: BM25 counts repeats, and a question's
//! terms are summed in its order, so every implementation adds the same
//! floats in the same order.

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
    fmt,
    ops::Range,
    str::FromStr,
};

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};

/// Which language's stop words and stemmer the analyzer uses
/// (`SEMSEARCH_LEXICAL_LANGUAGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// The chatbot's users: Brazilian Portuguese help articles.
    #[default]
    Portuguese,
    English,
    /// Normalisation, folding and tokens only: no stop words, no stemming.
    None,
}

impl Language {
    /// Every accepted spelling, for `--help` and errors.
    pub const NAMES: &'static str = "portuguese, english, none";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Portuguese => "portuguese",
            Self::English => "english",
            Self::None => "none",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `SEMSEARCH_LEXICAL_LANGUAGE` value that names no language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLanguage(pub String);

impl fmt::Display for UnknownLanguage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown lexical language {:?}; expected one of: {}", self.0, Language::NAMES)
    }
}

impl std::error::Error for UnknownLanguage {}

impl FromStr for Language {
    type Err = UnknownLanguage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portuguese" | "pt" | "pt-br" => Ok(Self::Portuguese),
            "english" | "en" => Ok(Self::English),
            "none" => Ok(Self::None),
            _ => Err(UnknownLanguage(s.to_owned())),
        }
    }
}

const PORTUGUESE_STOP: &str = include_str!("stopwords/portuguese.txt");
const ENGLISH_STOP: &str = include_str!("stopwords/english.txt");

/// Turns text into terms (see the module doc). Cheap to share: build one
/// per process and pass it by reference.
pub struct Analyzer {
    language: Language,
    stemmer: Option<Stemmer>,
    stop: HashSet<String, TermHasher>,
}

impl fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Analyzer").field("language", &self.language).field("stop_words", &self.stop.len()).finish()
    }
}

impl Analyzer {
    pub fn new(language: Language) -> Self {
        let (stemmer, list) = match language {
            Language::Portuguese => (Some(Stemmer::create(Algorithm::Portuguese)), PORTUGUESE_STOP),
            Language::English => (Some(Stemmer::create(Algorithm::English)), ENGLISH_STOP),
            Language::None => (None, ""),
        };
        let stop = list.lines().map(str::trim).filter(|w| !w.is_empty()).map(fold).collect();
        Self { language, stemmer, stop }
    }

    pub fn language(&self) -> Language {
        self.language
    }

    /// The terms of `text`, in order, with repeats.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.for_each_term(text, |t| out.push(t.to_owned()));
        out
    }

    /// Calls `f` with each term of `text`, in order, with repeats: what
    /// [`Analyzer::terms`] returns, without a `String` per term (a full
    /// load analyses every document).
    pub fn for_each_term(&self, text: &str, f: impl FnMut(&str)) {
        self.each_term(&normalize(text), f);
    }

    /// Calls `f` with each term of already normalised and folded text.
    fn each_term(&self, folded: &str, mut f: impl FnMut(&str)) {
        // The stem is copied out of the thread's cache before `f` runs, so
        // `f` may analyse text itself; one buffer serves every token.
        let mut stem = String::new();
        for token in folded.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()) {
            if self.stop.contains(token) {
                continue;
            }
            match &self.stemmer {
                Some(stemmer) => {
                    stem_cached(self.language, stemmer, token, &mut stem);
                    f(&stem);
                }
                None => f(token),
            }
        }
    }

    /// The words of `text` with the byte range each covers in `text` and
    /// the terms it analyses to (none for a stop word): for snippets and
    /// their highlights. A word is a run of characters that are
    /// alphanumeric or marks in `text` itself, analysed on its own, so the
    /// ranges point into the text as written; in rare texts (compatibility
    /// characters that NFKC splits or joins) this differs slightly from
    /// [`Analyzer::terms`], which is what scores.
    pub fn words(&self, text: &str) -> Vec<(Range<usize>, Vec<String>)> {
        let mut out = Vec::new();
        let mut start: Option<usize> = None;
        let close = |start: usize, end: usize, out: &mut Vec<(Range<usize>, Vec<String>)>| {
            let mut terms = Vec::new();
            self.each_term(&normalize(&text[start..end]), |t| terms.push(t.to_owned()));
            out.push((start..end, terms));
        };
        for (i, c) in text.char_indices() {
            let wordish = c.is_alphanumeric() || is_combining_mark(c);
            match (wordish, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    close(s, i, &mut out);
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            close(s, text.len(), &mut out);
        }
        out
    }
}

/// Most stems one thread keeps per language before it starts over: words
/// follow Zipf's law, so a few thousand cover most of any text, and the
/// bound keeps a thread's cache to a few MB whatever it reads.
const STEM_CACHE_ENTRIES: usize = 50_000;

/// Hashing for the analyzer's and the postings' maps: keyed per process
/// (text is partly users' questions, so a fixed hash would let them choose
/// collisions) and several times cheaper than SipHash on short terms.
pub(crate) type TermHasher = foldhash::fast::RandomState;

/// A thread's memo of one pure string function (a stem, a normalised
/// piece), forgotten whole when it reaches its bound.
type Memo = HashMap<Box<str>, Box<str>, TermHasher>;

thread_local! {
    /// Token → stem, per language (Portuguese, English). Snowball was a
    /// fifth of a full load's lexical build; most tokens repeat.
    static STEMS: RefCell<[Memo; 2]> = RefCell::new([HashMap::default(), HashMap::default()]);
}

/// Appends `make(key)` to `out`, from `memo` when it holds `key`; a memo
/// holding `bound` entries starts over before it takes another.
fn remembered(memo: &mut Memo, bound: usize, key: &str, out: &mut String, make: impl FnOnce(&str) -> String) {
    if let Some(done) = memo.get(key) {
        return out.push_str(done);
    }
    let done = make(key);
    out.push_str(&done);
    if memo.len() >= bound {
        memo.clear();
    }
    memo.insert(key.into(), done.into());
}

/// `stemmer.stem(token)` into `out` (cleared first), remembered per thread:
/// the same string always.
fn stem_cached(language: Language, stemmer: &Stemmer, token: &str, out: &mut String) {
    out.clear();
    let slot = match language {
        Language::Portuguese => 0,
        Language::English => 1,
        Language::None => return out.push_str(&stemmer.stem(token)),
    };
    STEMS.with(|cell| {
        let memo = &mut cell.borrow_mut()[slot];
        remembered(memo, STEM_CACHE_ENTRIES, token, out, |t| stemmer.stem(t).into_owned());
    })
}

/// Steps 1-3: NFKC, lower-case, fold, piece by piece between ASCII spaces:
/// a piece of ASCII is only lower-cased (the other steps leave it as it
/// is), the rest goes through all three. The same as running them over the
/// whole text (a property test checks it): U+0020 is a starter that no
/// composition takes, so NFKC, NFD and NFC never act across it, and it ends
/// the context of the final-sigma rule of lower-casing. Most words of
/// Portuguese are ASCII, so this skips most of the Unicode tables.
pub fn normalize(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, piece) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if piece.is_ascii() {
            let start = out.len();
            out.push_str(piece);
            out[start..].make_ascii_lowercase();
        } else {
            normalize_piece_cached(piece, &mut out);
        }
    }
    out
}

/// Most pieces one thread remembers the normalised form of, and the
/// longest piece it remembers (longer ones are rare and not worth a slot).
const PIECE_CACHE_ENTRIES: usize = 50_000;
const PIECE_CACHE_MAX_BYTES: usize = 64;

thread_local! {
    /// Non-ASCII piece → its steps 1-3, per thread: the Unicode tables
    /// were about an eighth of a Portuguese corpus' analysis, and accented
    /// words repeat as much as the others.
    static PIECES: RefCell<Memo> = RefCell::new(HashMap::default());
}

/// Appends `normalize_whole(piece)` to `out`, remembered per thread.
fn normalize_piece_cached(piece: &str, out: &mut String) {
    if piece.len() > PIECE_CACHE_MAX_BYTES {
        return out.push_str(&normalize_whole(piece));
    }
    PIECES.with(|cell| remembered(&mut cell.borrow_mut(), PIECE_CACHE_ENTRIES, piece, out, normalize_whole))
}

/// Steps 1-3 over all of `text` at once: the definition [`normalize`] follows.
fn normalize_whole(text: &str) -> String {
    let lowered = text.nfkc().collect::<String>().to_lowercase();
    fold(&lowered)
}

/// Accent folding (step 3): NFD, marks dropped, NFC, then the letters that
/// have no decomposition.
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        return text.to_owned();
    }
    let stripped: String = text.nfd().filter(|&c| !is_mark(c)).collect();
    let mut out = String::with_capacity(stripped.len());
    for c in stripped.nfc() {
        match c {
            'ø' => out.push('o'),
            'æ' => out.push_str("ae"),
            'œ' => out.push_str("oe"),
            'ß' => out.push_str("ss"),
            'đ' | 'ð' => out.push('d'),
            'ł' => out.push('l'),
            'ı' => out.push('i'),
            'þ' => out.push_str("th"),
            c => out.push(c),
        }
    }
    out
}

/// General category Mark (Mn, Mc, Me).
fn is_mark(c: char) -> bool {
    is_combining_mark(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_and_case_do_not_change_a_portuguese_term() {
        let a = Analyzer::new(Language::Portuguese);
        assert_eq!(a.terms("Planilha ELETRÔNICA"), a.terms("planilha eletronica"));
        assert_eq!(a.terms("ação"), a.terms("acao"));
    }

    #[test]
    fn stop_words_go_with_or_without_accents_and_repeats_stay() {
        let a = Analyzer::new(Language::Portuguese);
        assert_eq!(a.terms("não nao para o"), Vec::<String>::new());
        let t = a.terms("jogo jogos de jogo");
        assert_eq!(t.len(), 3);
        assert!(t.iter().all(|x| x == &t[0]), "{t:?}");
    }

    #[test]
    fn none_only_normalises_and_splits() {
        let a = Analyzer::new(Language::None);
        assert_eq!(a.terms("Ｆｕｌｌ-width ﬁle, O'Neil café"), ["full", "width", "file", "o", "neil", "cafe"]);
    }

    #[test]
    fn english_stems_with_snowball() {
        let a = Analyzer::new(Language::English);
        assert_eq!(a.terms("The running databases"), ["run", "databas"]);
    }

    #[test]
    fn letters_without_a_decomposition_are_folded_too() {
        assert_eq!(fold("ørsted straße æon"), "orsted strasse aeon");
    }

    #[test]
    fn words_point_into_the_text_as_written() {
        let a = Analyzer::new(Language::Portuguese);
        let text = "Edite planilhas — eletrônicas!";
        let words = a.words(text);
        let spans: Vec<&str> = words.iter().map(|(r, _)| &text[r.clone()]).collect();
        assert_eq!(spans, ["Edite", "planilhas", "eletrônicas"]);
        assert_eq!(words[2].1, a.terms("eletronica"));
    }

    proptest::proptest! {
        /// Piece by piece equals all at once, on text made of what could
        /// tell them apart: spaces next to combining marks, compatibility
        /// characters whose NFKC holds a space (´, NBSP), capital sigma,
        /// Hangul jamo that compose, ligatures, full-width letters.
        #[test]
        fn normalizing_piece_by_piece_equals_normalizing_the_whole(
            chars in proptest::collection::vec(proptest::sample::select(vec![
                ' ', ' ', 'a', 'Z', '1', '\u{301}', '\u{327}', '\u{323}', '\u{b4}', '\u{a0}', 'Σ', 'Ο', 'σ',
                'é', 'Ç', 'ã', 'ø', 'ß', '\u{fb01}', '\u{ff26}', '\u{1100}', '\u{1161}', '\u{11a8}', '-', '\'',
                '\u{2126}', 'İ', '\u{345}',
            ]), 0..24)
        ) {
            let text: String = chars.into_iter().collect();
            proptest::prop_assert_eq!(normalize(&text), normalize_whole(&text), "{:?}", text);
        }
    }

    #[test]
    fn stems_from_the_cache_equal_the_stemmer_s() {
        let a = Analyzer::new(Language::Portuguese);
        let stemmer = Stemmer::create(Algorithm::Portuguese);
        let mut out = String::from("left over");
        for word in ["eletronicas", "planilhas", "eletronicas", "configuracoes", "planilhas"] {
            stem_cached(Language::Portuguese, &stemmer, word, &mut out);
            assert_eq!(out, stemmer.stem(word));
        }
        assert_eq!(a.terms("planilhas planilhas"), ["planilh", "planilh"]);
    }

    #[test]
    fn remembered_pieces_normalise_as_the_first_time() {
        let long = "é".repeat(PIECE_CACHE_MAX_BYTES);
        for piece in ["Eletrônica,", "AÇÃO", "ﬁlé", "Σοφία", long.as_str(), "Eletrônica,"] {
            let (mut first, mut again) = (String::from("x"), String::new());
            normalize_piece_cached(piece, &mut first);
            normalize_piece_cached(piece, &mut again);
            assert_eq!(first, format!("x{}", normalize_whole(piece)), "{piece}");
            assert_eq!(again, normalize_whole(piece), "{piece}");
        }
    }

    #[test]
    fn language_names_parse() {
        assert_eq!("Portuguese".parse::<Language>(), Ok(Language::Portuguese));
        assert_eq!("none".parse::<Language>(), Ok(Language::None));
        assert!("klingon".parse::<Language>().is_err());
    }
}
