//! The security-question catalogue and the rules for answers (DESIGN.md, registration step 2).
//!
//! Questions are meant to be answerable by anyone, whatever their family, schooling or
//! background, and stable over years. Their ids are stored with the answers: never renumber.

use unicode_normalization::UnicodeNormalization;

pub const CATALOGUE: [(u32, &str); 20] = [
    (1, "What was the name of your first school?"),
    (2, "What was the name of the street you lived on as a child?"),
    (3, "What was the first film you saw at a cinema?"),
    (4, "What was the make of your first car, bike or scooter?"),
    (5, "What is the name of a teacher you remember?"),
    (6, "What was the name of your first pet or favourite animal?"),
    (7, "In which town or city did you have your first job?"),
    (8, "What is the title of a book you have read more than once?"),
    (9, "What was your favourite food as a child?"),
    (10, "What is the name of a place you would like to visit?"),
    (11, "What was the name of your childhood best friend?"),
    (12, "What was the first concert or live event you went to?"),
    (13, "What is the middle name of your oldest friend?"),
    (14, "What was the name of the first team or club you belonged to?"),
    (15, "Which hospital, practice or service did you first work in?"),
    (16, "What was your favourite subject at school?"),
    (17, "What is the name of the town where you met your closest friend?"),
    (18, "What was the first musical instrument or song you learned?"),
    (19, "What was the name of your favourite childhood toy or game?"),
    (20, "What is a word or phrase only you would think of?"),
];

pub const QUESTIONS_PER_REGISTRATION: usize = 4;
pub const MIN_ANSWER_CHARS: usize = 3;
/// Long enough for any honest answer; bounds the argon2 input.
pub const MAX_ANSWER_CHARS: usize = 200;

pub fn question(id: u32) -> Option<&'static str> {
    CATALOGUE.iter().find(|(qid, _)| *qid == id).map(|(_, text)| *text)
}

/// Unicode NFKC, case-folded, inner whitespace collapsed to one space, trimmed: so "  Oak
/// ROAD " and "oak road" are the same answer, on any keyboard.
pub fn normalise(answer: &str) -> String {
    // NFKC again after lowering the case: a lowercase letter can bring a combining mark that is
    // out of canonical order ("İ" + U+0320 → "i" U+0307 U+0320), which the fuzzer found made
    // "İ̠" and "i̠̇" different answers.
    let folded: String = answer.nfkc().flat_map(char::to_lowercase).nfkc().collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("Choose {QUESTIONS_PER_REGISTRATION} questions.")]
    WrongCount,
    #[error("That question is not in the list.")]
    UnknownQuestion,
    #[error("Choose {QUESTIONS_PER_REGISTRATION} different questions.")]
    RepeatedQuestion,
    #[error("Each answer needs at least {MIN_ANSWER_CHARS} characters.")]
    TooShort,
    #[error("An answer can be at most {MAX_ANSWER_CHARS} characters.")]
    TooLong,
    #[error("Give a different answer to each question.")]
    RepeatedAnswer,
}

/// Checks a registration's questions and answers; returns the normalised answers in order.
pub fn check(answers: &[(u32, &str)]) -> Result<Vec<(u32, String)>, AnswerError> {
    if answers.len() != QUESTIONS_PER_REGISTRATION {
        return Err(AnswerError::WrongCount);
    }
    let mut out: Vec<(u32, String)> = Vec::with_capacity(answers.len());
    for (id, answer) in answers {
        if question(*id).is_none() {
            return Err(AnswerError::UnknownQuestion);
        }
        if out.iter().any(|(seen, _)| seen == id) {
            return Err(AnswerError::RepeatedQuestion);
        }
        let normalised = normalise(answer);
        let length = normalised.chars().count();
        if length < MIN_ANSWER_CHARS {
            return Err(AnswerError::TooShort);
        }
        if length > MAX_ANSWER_CHARS {
            return Err(AnswerError::TooLong);
        }
        if out.iter().any(|(_, seen)| *seen == normalised) {
            return Err(AnswerError::RepeatedAnswer);
        }
        out.push((*id, normalised));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_twenty_distinct_questions() {
        let mut ids: Vec<u32> = CATALOGUE.iter().map(|(id, _)| *id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 20);
        let mut texts: Vec<&str> = CATALOGUE.iter().map(|(_, t)| *t).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), 20);
    }

    #[test]
    fn answers_are_normalised_across_case_width_and_spacing() {
        assert_eq!(normalise("  Oak\tROAD  "), "oak road");
        assert_eq!(normalise("ＯＡＫ ｒｏａｄ"), "oak road", "full-width forms fold (NFKC)");
        assert_eq!(normalise("Zoë"), normalise("Zoe\u{0308}"), "composed and decomposed agree");
        assert_eq!(normalise("ÉCOLE"), "école");
    }

    #[test]
    fn four_distinct_known_questions_with_distinct_real_answers() {
        let good = [(1, "St Mary's"), (2, "Oak Road"), (3, "Jaws"), (4, "Raleigh")];
        assert_eq!(check(&good).unwrap()[1], (2, "oak road".to_owned()));
        assert_eq!(check(&good[..3]), Err(AnswerError::WrongCount));
        assert_eq!(
            check(&[(1, "aaa"), (2, "bbb"), (3, "ccc"), (99, "ddd")]),
            Err(AnswerError::UnknownQuestion)
        );
        assert_eq!(
            check(&[(1, "aaa"), (1, "bbb"), (3, "ccc"), (4, "ddd")]),
            Err(AnswerError::RepeatedQuestion)
        );
        assert_eq!(check(&[(1, " a  "), (2, "bbb"), (3, "ccc"), (4, "ddd")]), Err(AnswerError::TooShort));
        assert_eq!(
            check(&[(1, "Oak Road"), (2, "oak  road"), (3, "ccc"), (4, "ddd")]),
            Err(AnswerError::RepeatedAnswer)
        );
        let long = "x".repeat(MAX_ANSWER_CHARS + 1);
        assert_eq!(check(&[(1, &long), (2, "bbb"), (3, "ccc"), (4, "ddd")]), Err(AnswerError::TooLong));
    }

    #[test]
    fn a_capital_that_lowers_to_a_combining_mark_is_the_same_answer() {
        // From the fuzz corpus (passcodes_and_answers/regression-combining-order).
        assert_eq!(normalise("\u{130}\u{320}"), normalise("i\u{307}\u{320}"));
        assert_eq!(normalise("\u{130}\u{320}"), normalise(&normalise("\u{130}\u{320}")));
    }

    proptest::proptest! {
        #[test]
        fn normalising_is_stable_trimmed_and_single_spaced(answer in "\\PC{0,40}") {
            let once = normalise(&answer);
            proptest::prop_assert_eq!(normalise(&once), once.clone());
            proptest::prop_assert_eq!(once.trim(), once.as_str());
            proptest::prop_assert!(!once.contains("  "));
        }

        #[test]
        fn case_and_spacing_do_not_change_an_answer(words in proptest::collection::vec("[a-zA-Z0-9]{1,8}", 1..5), gap in "[ \t]{1,3}") {
            let plain = words.join(" ");
            let shouted = format!("  {}  ", words.join(&gap).to_uppercase());
            proptest::prop_assert_eq!(normalise(&shouted), plain.to_lowercase());
        }
    }
}
