#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rtmp::fuzz::amf0(data);
});
