#![no_main]
// What it checks: fuzzing::apdu.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::apdu(data));
