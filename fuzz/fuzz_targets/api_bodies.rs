#![no_main]
// What it checks: fuzzing::api_bodies.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::api_bodies(data));
