#![no_main]
// What it checks: fuzzing::status_words.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::status_words(data));
