#![no_main]
// What it checks: fuzzing::envelopes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::envelopes(data));
