//! "Did you mean …?": the nearest known name to a misspelled one.

/// The candidate closest to `word`, if one is close enough to be a likely misspelling: few
/// edits apart (transpositions count once), a high Jaro–Winkler similarity, or the same letters
/// in another case.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let len = lower.chars().count();
    let max_edits = if len < 3 { 0 } else { (len / 3).max(1) };
    let mut best: Option<(&'a str, f64)> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        let cl = c.to_ascii_lowercase();
        let edits = strsim::damerau_levenshtein(&lower, &cl);
        let jw = strsim::jaro_winkler(&lower, &cl);
        let score = if cl == lower {
            3.0
        } else if edits <= max_edits && edits < cl.chars().count() {
            2.0 - edits as f64 / 100.0 + jw / 1000.0
        } else if jw >= 0.85 {
            jw
        } else {
            continue;
        };
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

/// ` (did you mean `x`?)` or nothing: a suffix for messages.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match nearest(word, candidates) {
        Some(c) => format!("did you mean `{c}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_misspellings_and_not_strangers() {
        let known = ["template", "parameters", "needs", "tags"];
        assert_eq!(nearest("tempalte", known), Some("template"));
        assert_eq!(nearest("paramters", known), Some("parameters"));
        assert_eq!(nearest("Needs", known), Some("needs"));
        assert_eq!(nearest("zzz", known), None);
        assert_eq!(nearest("Sbu", ["Sub", "Select", "Split"]), Some("Sub"));
        assert_eq!(nearest("x", ["y"]), None);
        assert_eq!(nearest("vpc", ["efs", "alb"]), None);
    }
}
