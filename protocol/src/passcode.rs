//! The rules for a new passcode (PIN), shared by the SPA (which checks as the person types) and
//! the card agent (which refuses a trivial PIN whatever page asks): 6–8 digits, the confirmation
//! matches, and not one that is easy to guess.

/// Why a new passcode is refused, as a sentence for the person choosing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasscodeProblem {
    Length,
    NotDigits,
    Mismatch,
    Repeated,
    Sequence,
    Common,
}

impl PasscodeProblem {
    pub fn message(self) -> &'static str {
        match self {
            PasscodeProblem::Length => "Your new passcode must be 6 to 8 digits long.",
            PasscodeProblem::NotDigits => "Your new passcode can only contain the digits 0 to 9.",
            PasscodeProblem::Mismatch => "The two passcodes you entered are different. Enter the same passcode twice.",
            PasscodeProblem::Repeated => {
                "Your new passcode cannot be one digit repeated or a short pattern repeated (like 111111 or 121212)."
            }
            PasscodeProblem::Sequence => "Your new passcode cannot be a run of digits up or down (like 123456 or 987654).",
            PasscodeProblem::Common => "That passcode is one of the most commonly used, so it is easy to guess. Choose another.",
        }
    }
}

impl std::fmt::Display for PasscodeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Frequently chosen PINs that are neither repeats nor runs (from published PIN-frequency studies),
/// plus the default PIN cards are issued with.
const COMMON: &[&str] = &[
    "123456", "654321", "123123", "112233", "121212", "159753", "147258", "258369", "696969", "101010",
    "131313", "520520", "000007", "102030", "110011", "123321", "142536", "147852", "159357", "198411",
    "199011", "200000", "212121", "232323", "252525", "314159", "420420", "456123", "456789", "741852",
    "753951", "789456", "852456", "963852", "11223344", "12341234", "12344321", "13579246", "19871987",
    "12121212", "11112222", "12345678", "87654321", "24682468", "11001100",
];

/// Checks a new passcode and its confirmation.
pub fn check(new: &str, confirm: &str) -> Result<(), PasscodeProblem> {
    if !new.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PasscodeProblem::NotDigits);
    }
    if !(6..=8).contains(&new.len()) {
        return Err(PasscodeProblem::Length);
    }
    if new != confirm {
        return Err(PasscodeProblem::Mismatch);
    }
    check_strength(new)
}

/// The "easy to guess" rules alone (for a PIN already known to be 6–8 digits).
pub fn check_strength(pin: &str) -> Result<(), PasscodeProblem> {
    // Callers promise digits; anything else is refused as such, never misread (the fuzzer found
    // that a non-digit overflowed the step arithmetic below).
    if !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PasscodeProblem::NotDigits);
    }
    let digits: Vec<i8> = pin.bytes().map(|b| (b - b'0') as i8).collect();
    // One digit, or a block of 2–4 digits, repeated to the full length.
    let repeated = (1..=4).any(|block| {
        digits.len().is_multiple_of(block)
            && digits.len() > block
            && digits.chunks(block).all(|c| c == &digits[..block])
    });
    if repeated {
        return Err(PasscodeProblem::Repeated);
    }
    let steps: Vec<i8> = digits.windows(2).map(|w| (w[1] - w[0]).rem_euclid(10)).collect();
    if steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == 9) {
        return Err(PasscodeProblem::Sequence);
    }
    if COMMON.contains(&pin) {
        return Err(PasscodeProblem::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_passcodes_are_refused_with_the_reason() {
        assert_eq!(check("12345", "12345"), Err(PasscodeProblem::Length));
        assert_eq!(check("123456789", "123456789"), Err(PasscodeProblem::Length));
        assert_eq!(check("12a456", "12a456"), Err(PasscodeProblem::NotDigits));
        assert_eq!(check("280419", "280418"), Err(PasscodeProblem::Mismatch));
        for repeated in ["111111", "00000000", "121212", "123123", "12341234"] {
            let result = check(repeated, repeated);
            assert!(
                matches!(result, Err(PasscodeProblem::Repeated | PasscodeProblem::Common)),
                "{repeated}: {result:?}"
            );
        }
        for run in ["123456", "234567", "987654", "3456789", "890123", "10987654"] {
            assert_eq!(check(run, run), Err(PasscodeProblem::Sequence), "{run}");
        }
        for common in ["159753", "696969", "147258", "12344321"] {
            assert!(check(common, common).is_err(), "{common}");
        }
    }

    #[test]
    fn the_strength_rules_refuse_what_is_not_digits_without_a_panic() {
        // From the fuzz corpus (passcodes_and_answers/seed-unicode): the steps overflowed.
        assert_eq!(check_strength("\u{fb01} \u{130}stanbul"), Err(PasscodeProblem::NotDigits));
        assert_eq!(check_strength("\u{ff}\u{80}"), Err(PasscodeProblem::NotDigits));
    }

    #[test]
    fn ordinary_passcodes_pass() {
        for fine in ["280419", "97531864", "4071993", "830562"] {
            assert_eq!(check(fine, fine), Ok(()), "{fine}");
        }
    }

    proptest::proptest! {
        #[test]
        fn only_six_to_eight_digits_are_ever_accepted(new in "\\PC{0,12}") {
            if check(&new, &new).is_ok() {
                proptest::prop_assert!((6..=8).contains(&new.len()) && new.bytes().all(|b| b.is_ascii_digit()));
            }
            let _ = check_strength(&new);
        }

        #[test]
        fn a_good_passcode_must_be_confirmed_exactly(new in "[0-9]{6,8}", other in "[0-9]{6,8}") {
            if new != other {
                proptest::prop_assert_eq!(check(&new, &other), Err(PasscodeProblem::Mismatch));
            }
        }

        #[test]
        fn one_digit_repeated_or_a_run_is_refused(digit in 0u8..10, length in 6usize..=8, step in proptest::sample::select(vec![1u8, 9])) {
            let repeated: String = std::iter::repeat_n(char::from(b'0' + digit), length).collect();
            proptest::prop_assert!(check(&repeated, &repeated).is_err());
            let run: String = (0..length).map(|i| char::from(b'0' + (digit + step * i as u8) % 10)).collect();
            proptest::prop_assert!(check(&run, &run).is_err(), "{}", run);
        }
    }
}
