#![no_main]
// What it checks: fuzzing::certificates.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::certificates(data));
