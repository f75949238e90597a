#![no_main]
// What it checks: fuzzing::tlv.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::tlv(data));
