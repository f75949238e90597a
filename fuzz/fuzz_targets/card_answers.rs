#![no_main]
// What it checks: fuzzing::card_answers.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::card_answers(data));
