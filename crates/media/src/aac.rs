//! AAC parsing: AudioSpecificConfig and ADTS.
//! (Filled in by the FLV work: see the crate's tests.)
