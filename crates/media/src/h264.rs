//! H.264 parsing: the AVCDecoderConfigurationRecord and the SPS fields Ferrocast reports.
//! (Filled in by the FLV work: see the crate's tests.)
