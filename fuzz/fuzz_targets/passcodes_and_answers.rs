#![no_main]
// What it checks: fuzzing::passcodes_and_answers.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::passcodes_and_answers(data));
