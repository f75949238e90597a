#![no_main]
// What it checks: fuzzing::agent_requests.
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::agent_requests(data));
