//! The passage of a document that answers a question: the window of its
//! text, at most N characters and cut at word boundaries, that holds the
//! most of the question's terms (weighted by idf, so a rare word counts
//! more than a common one), with the matched words' spans.
//!
//! Highlights are `[start, end)` offsets in UTF-16 code units into the
//! snippet's own text: what JavaScript's string indexes use, so the
//! chatbot and the playground can slice without converting.

use std::collections::HashMap;

use crate::analyzer::Analyzer;

/// A document's best window for one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    pub text: String,
    /// Matched words, ascending, as UTF-16 `[start, end)` within `text`.
    pub highlights: Vec<[usize; 2]>,
}

/// Bonus per matched word beyond the distinct terms' weights: among windows
/// with the same terms, the one that repeats them wins.
const REPEAT_BONUS: f64 = 0.01;

/// The best window of `text` of at most `max_chars` characters (Unicode
/// scalar values) for a question whose terms weigh `weights` (term → idf).
/// Without any match, the text's opening. A single word longer than
/// `max_chars` is cut inside the word (the only cut not at a boundary).
pub fn best_window(analyzer: &Analyzer, text: &str, weights: &HashMap<&str, f64>, max_chars: usize) -> Passage {
    if max_chars == 0 || text.is_empty() {
        return Passage { text: String::new(), highlights: Vec::new() };
    }
    let words = analyzer.words(text);
    let matched: Vec<Option<&str>> =
        words.iter().map(|(_, terms)| terms.iter().map(String::as_str).find(|t| weights.contains_key(t))).collect();
    // Char offset of every byte position we cut at (word starts and ends).
    let char_at = CharOffsets::new(text);
    let (mut best, mut best_score) = ((0usize, 0usize), f64::NEG_INFINITY);
    if text.chars().count() <= max_chars {
        best = (0, words.len());
    } else if !words.is_empty() {
        // Two pointers over words: the widest run from each start that fits.
        let mut end = 0;
        for start in 0..words.len() {
            end = end.max(start);
            while end < words.len() && char_at.at(words[end].0.end) - char_at.at(words[start].0.start) <= max_chars {
                end += 1;
            }
            let mut seen: Vec<&str> = Vec::new();
            let mut score = 0.0;
            for t in matched[start..end].iter().flatten() {
                if !seen.contains(t) {
                    seen.push(t);
                    score += weights[t];
                }
                score += REPEAT_BONUS;
            }
            if score > best_score {
                (best, best_score) = ((start, end), score);
            }
        }
    }
    let (first, last) = best;
    let (mut lo, mut hi) = if first < last {
        (words[first].0.start, words[last - 1].0.end)
    } else {
        // No whole word fits (or none at all): cut the first word.
        let lo = words.first().map_or(0, |w| w.0.start);
        (lo, lo)
    };
    if hi == lo {
        hi = text[lo..].char_indices().nth(max_chars).map_or(text.len(), |(i, _)| lo + i);
    } else if first == 0 && last == words.len() && text.chars().count() <= max_chars {
        (lo, hi) = (0, text.len());
    }
    let window = &text[lo..hi];
    let mut highlights = Vec::new();
    for ((range, _), hit) in words.iter().zip(&matched).take(last).skip(first) {
        if hit.is_some() && range.start >= lo && range.end <= hi {
            let start = utf16_len(&text[lo..range.start]);
            highlights.push([start, start + utf16_len(&text[range.clone()])]);
        }
    }
    Passage { text: window.to_owned(), highlights }
}

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Byte offset → character offset, for the cut points of one text.
struct CharOffsets {
    /// Byte offset of every char start, ascending, plus the text's length.
    starts: Vec<usize>,
}

impl CharOffsets {
    fn new(text: &str) -> Self {
        let mut starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        starts.push(text.len());
        Self { starts }
    }

    /// Characters before byte `byte` (a char boundary).
    fn at(&self, byte: usize) -> usize {
        self.starts.partition_point(|&s| s < byte)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::Language;

    fn weights<'a>(a: &Analyzer, q: &str, terms: &'a mut Vec<String>) -> HashMap<&'a str, f64> {
        *terms = a.terms(q);
        terms.iter().map(|t| (t.as_str(), 1.0)).collect()
    }

    #[test]
    fn the_window_holds_the_question_and_is_cut_at_words() {
        let a = Analyzer::new(Language::Portuguese);
        let text =
            "Este pacote traz muitas coisas. Uma planilha eletrônica para fazer contas e gráficos. Fim do texto.";
        let mut t = Vec::new();
        let w = weights(&a, "planilha para contas", &mut t);
        let s = best_window(&a, text, &w, 40);
        assert!(s.text.chars().count() <= 40, "{:?}", s.text);
        assert!(s.text.contains("planilha") && s.text.contains("contas"), "{:?}", s.text);
        assert!(text.contains(&s.text));
        let units: Vec<u16> = s.text.encode_utf16().collect();
        let marked: Vec<String> = s.highlights.iter().map(|[a, b]| String::from_utf16_lossy(&units[*a..*b])).collect();
        assert_eq!(marked, ["planilha", "contas"]);
    }

    #[test]
    fn highlights_are_utf16_offsets() {
        let a = Analyzer::new(Language::None);
        let text = "🙂 café é bom";
        let mut t = Vec::new();
        let w = weights(&a, "cafe", &mut t);
        let s = best_window(&a, text, &w, 100);
        assert_eq!(s.text, text);
        assert_eq!(s.highlights, [[3, 7]], "the emoji is two UTF-16 units and a space");
    }

    #[test]
    fn no_match_gives_the_opening_and_a_long_word_is_cut() {
        let a = Analyzer::new(Language::English);
        let mut t = Vec::new();
        let w = weights(&a, "zebra", &mut t);
        let s = best_window(&a, "one two three four", &w, 9);
        assert_eq!((s.text.as_str(), s.highlights.len()), ("one two", 0));
        assert_eq!(best_window(&a, "abcdefghij", &w, 4).text, "abcd");
        assert_eq!(best_window(&a, "", &w, 4).text, "");
        assert_eq!(best_window(&a, "text", &w, 0).text, "");
    }
}
