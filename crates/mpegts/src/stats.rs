//! Counters of the damage the demuxer survived.

/// Damage seen in the transport stream and survived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Transport packets read.
    pub packets: u64,
    /// Bytes skipped while looking for packet alignment (garbage, or a partial first packet).
    pub skipped_bytes: u64,
    /// Times alignment was lost (a packet did not start with 0x47).
    pub sync_losses: u64,
    /// Packets with an impossible header (adaptation field too long, reserved control value).
    pub invalid_packets: u64,
    /// Packets flagged with `transport_error_indicator`, discarded.
    pub transport_errors: u64,
    /// Continuity counter gaps on the PSI and selected PIDs: packets were lost.
    pub cc_errors: u64,
    /// Duplicate packets, discarded.
    pub duplicate_packets: u64,
    /// PAT/PMT sections with a bad CRC or layout, ignored.
    pub psi_errors: u64,
    /// PES packets dropped (each also reported as [`Outcome::Dropped`](crate::Outcome::Dropped)).
    pub pes_dropped: u64,
    /// Of those, the ones over the size limit.
    pub pes_oversized: u64,
    /// PES packets with a malformed header (each also reported as an [`Error`](crate::Error)).
    pub pes_errors: u64,
}
