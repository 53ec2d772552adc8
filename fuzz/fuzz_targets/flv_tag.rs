#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    flv::fuzz::parse_tag(data);
});
