//! Text normalisation applied to a question before it is embedded and cached.
//!
//! Owns one decision: which string the provider sees (and the cache is keyed
//! by). It does not touch vectors. Two modes, chosen by
//! `SEMSEARCH_TEXT_NORMALIZATION`:
//!
//! - [`Normalization::None`] (default): the text is sent as received, only
//!   trimmed. Use it when clients already send the exact text they want embedded.
//! - [`Normalization::Chatbot`]: reproduces the chatbot's `prepareTextForSearch`
//!   character for character, so a question embedded here gets the same vector
//!   (and the same cache entry) as one the chatbot prepared itself. Steps, in the
//!   chatbot's order: Portuguese accented letters → ASCII base letter (case kept);
//!   drop every character that is not JS `\w` (`[A-Za-z0-9_]`), whitespace, or one
//!   of `- . , ! ?`; collapse whitespace runs to one space; trim; lower-case.
//!
//! Invariant: normalising is idempotent (`normalize(normalize(t)) == normalize(t)`),
//! so a client that already normalised gets the same cache key.

/// Whether `text` holds nothing a model could read: empty, or whitespace,
/// control characters and U+FFFD only (the BERT normaliser drops them all,
/// and other providers would embed noise). The one rule for `/v1/embed`'s
/// texts and a search's `text`, so neither sends noise to a paid provider.
pub fn nothing_to_embed(text: &str) -> bool {
    text.chars().all(|c| c.is_whitespace() || c.is_control() || c == char::REPLACEMENT_CHARACTER)
}

/// How question text is prepared before embedding. See the module docs.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// Send the text as received, trimmed of surrounding whitespace.
    #[default]
    None,
    /// The chatbot's `prepareTextForSearch`: fold Portuguese accents, keep
    /// `[A-Za-z0-9_]`, whitespace and `-.,!?`, collapse spaces, trim, lower-case.
    Chatbot,
}

impl Normalization {
    /// The text to embed and to key the cache with.
    pub fn apply(self, text: &str) -> String {
        match self {
            Self::None => text.trim().to_owned(),
            Self::Chatbot => chatbot(text),
        }
    }
}

/// The chatbot's `prepareTextForSearch`. See the module docs for the steps.
pub fn chatbot(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Pending whitespace is emitted as one space before the next kept
    // character, which collapses runs and trims both ends in one pass.
    let mut pending_space = false;
    for c in text.chars().map(fold_portuguese) {
        if is_js_whitespace(c) {
            pending_space = !out.is_empty();
        } else if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ',' | '!' | '?') {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// The chatbot's accent table: only these letters are folded; any other
/// non-ASCII letter is later removed, as in the chatbot.
fn fold_portuguese(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => 'A',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'È' | 'É' | 'Ê' | 'Ë' => 'E',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' => 'O',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
        'ç' => 'c',
        'Ç' => 'C',
        'ñ' => 'n',
        'Ñ' => 'N',
        other => other,
    }
}

/// JS `\s`: Unicode White_Space minus U+0085 (NEL, which JS does not count),
/// plus U+FEFF (BOM). The chatbot keeps these in its filter and then collapses
/// them, so e.g. a no-break space separates words.
fn is_js_whitespace(c: char) -> bool {
    (c.is_whitespace() && c != '\u{85}') || c == '\u{feff}'
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_and_whitespace_alone_are_nothing_to_embed() {
        use super::nothing_to_embed;
        for text in ["", " \n\t", "\u{1}\u{2}\u{7f}", "\u{0}\u{fffd}\r", "\u{85}\u{9f}"] {
            assert!(nothing_to_embed(text), "{text:?}");
        }
        for text in ["a", "\u{1}x", "ç", "😀", "\u{200b}."] {
            assert!(!nothing_to_embed(text), "{text:?}");
        }
    }

    use super::*;

    #[test]
    fn portuguese_questions_match_the_chatbot() {
        let cases = [
            ("Qual é a taxa da maquininha?", "qual e a taxa da maquininha?"),
            ("Como faço para cancelar?", "como faco para cancelar?"),
            ("  Não   recebi o pagamento!!  ", "nao recebi o pagamento!!"),
            ("Posso usar o cartão de crédito, débito e PIX?", "posso usar o cartao de credito, debito e pix?"),
            ("AÇÃO, INFORMAÇÕES e ÚLTIMA opção", "acao, informacoes e ultima opcao"),
            ("Ñandú à vista", "nandu a vista"),
        ];
        for (input, expected) in cases {
            assert_eq!(chatbot(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn characters_outside_the_allowed_set_are_removed_not_replaced() {
        assert_eq!(chatbot("R$ 1.500,00 (à vista) - 10% off: sim/não #1"), "r 1.500,00 a vista - 10 off simnao 1");
        assert_eq!(chatbot("snake_case e-mail"), "snake_case e-mail");
        assert_eq!(chatbot("emoji 🙂 aqui"), "emoji aqui", "removed char leaves the two spaces, collapsed to one");
        assert_eq!(chatbot("straße œuvre"), "strae uvre", "letters outside the table are removed, as in JS");
    }

    #[test]
    fn whitespace_of_every_kind_collapses_to_one_space() {
        assert_eq!(chatbot("a\t\tb\n\nc\u{a0}d\u{feff}e"), "a b c d e");
        assert_eq!(chatbot(" \n\t "), "");
        assert_eq!(chatbot("a\u{85}b"), "ab", "NEL is not whitespace in JS, so it is removed");
        assert_eq!(chatbot(""), "");
    }

    #[test]
    fn only_removed_characters_between_spaces_still_collapse() {
        assert_eq!(chatbot("a ### b"), "a b");
        assert_eq!(chatbot("### a"), "a");
        assert_eq!(chatbot("a ###"), "a");
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for t in ["Qual é a taxa da maquininha?", "  R$ 1.500,00  ", "ÀÉÎÕÜ çñ"] {
            let once = chatbot(t);
            assert_eq!(chatbot(&once), once);
        }
    }

    #[test]
    fn none_mode_only_trims() {
        assert_eq!(Normalization::None.apply("  Qual é a taxa?  "), "Qual é a taxa?");
        assert_eq!(Normalization::Chatbot.apply("  Qual é a taxa?  "), "qual e a taxa?");
    }
}
