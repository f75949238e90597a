#![no_main]
// What it checks: fuzzing::virtual_card.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::virtual_card(data));
