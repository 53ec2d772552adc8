//! Fuzz entry points: always compiled, so the `fuzz/` crate and the tests exercise the same
//! code.

use bytes::Bytes;

/// Reads a codec configuration record. Never panics, whatever `data` holds.
///
/// Byte 0 selects the record: 0 `avcC`, 1 `hvcC`, 2 `av1C` (modulo 3). The rest is the record.
pub fn codec_config(data: &[u8]) {
    let Some((&selector, record)) = data.split_first() else {
        return;
    };
    let record = Bytes::copy_from_slice(record);
    match selector % 3 {
        0 => {
            let _ = crate::h264::video_config(record);
        }
        1 => {
            if let Ok(config) = crate::hevc::video_config(record.clone()) {
                // A record that reads gives a codec string and a size within the limits.
                assert!(config.codec_string.starts_with("hvc1."));
                assert!(config.width > 0 && config.height > 0);
            }
            if let Ok(hvcc) = crate::hevc::HevcDecoderConfigurationRecord::parse(&record) {
                let _ = hvcc.codec_string();
            }
        }
        _ => {
            if let Ok(config) = crate::av1::video_config(record) {
                assert!(config.codec_string.starts_with("av01."));
                assert!(config.width > 0 && config.height > 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn codec_config_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            super::codec_config(&data);
        }
    }
}
