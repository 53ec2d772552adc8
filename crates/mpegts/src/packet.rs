//! Transport packets, continuity counters and PSI sections (PAT, PMT).

/// Size of a transport packet.
pub(crate) const PACKET_LEN: usize = 188;
/// The sync byte every packet starts with.
pub(crate) const SYNC: u8 = 0x47;
/// The PID of the program association table.
pub(crate) const PAT_PID: u16 = 0;
/// The PID of null (stuffing) packets.
pub(crate) const NULL_PID: u16 = 0x1fff;
/// The longest PAT or PMT section, header included (ISO/IEC 13818-1 2.4.4.5/2.4.4.9).
const MAX_SECTION_LEN: usize = 3 + 1021;

/// A parsed transport packet header with its payload.
#[derive(Debug)]
pub(crate) struct Packet<'a> {
    pub(crate) transport_error: bool,
    pub(crate) unit_start: bool,
    pub(crate) pid: u16,
    pub(crate) cc: u8,
    pub(crate) has_payload: bool,
    pub(crate) discontinuity: bool,
    pub(crate) payload: &'a [u8],
}

/// Parses one 188-byte packet. `None` when its adaptation field does not fit or its
/// adaptation_field_control is the reserved value.
pub(crate) fn parse_packet(p: &[u8]) -> Option<Packet<'_>> {
    let header = p.get(..4)?;
    let afc = (header[3] >> 4) & 3;
    let mut packet = Packet {
        transport_error: header[1] & 0x80 != 0,
        unit_start: header[1] & 0x40 != 0,
        pid: u16::from_be_bytes([header[1] & 0x1f, header[2]]),
        cc: header[3] & 0x0f,
        has_payload: afc & 1 != 0,
        discontinuity: false,
        payload: &[],
    };
    let mut start = 4;
    match afc {
        0 => return None,
        1 => {}
        _ => {
            let len = usize::from(*p.get(4)?);
            let end = 5 + len;
            // With a payload the adaptation field leaves room for at least one byte of it.
            let max = if packet.has_payload {
                PACKET_LEN - 1
            } else {
                PACKET_LEN
            };
            if end > max || end > p.len() {
                return None;
            }
            packet.discontinuity = len > 0 && p[5] & 0x80 != 0;
            start = end;
        }
    }
    if packet.has_payload {
        packet.payload = p.get(start..)?;
    }
    Some(packet)
}

/// What a packet's continuity counter says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Continuity {
    /// In order (or the first packet seen, or a signalled discontinuity).
    Ok,
    /// The same counter as the previous packet: a duplicate, to be discarded.
    Duplicate,
    /// Packets are missing.
    Gap,
}

/// Checks and records a PID's continuity counter. Packets without payload do not advance it.
pub(crate) fn check_continuity(last: &mut Option<u8>, packet: &Packet<'_>) -> Continuity {
    if !packet.has_payload {
        return Continuity::Ok;
    }
    let result = match *last {
        None => Continuity::Ok,
        Some(_) if packet.discontinuity => Continuity::Ok,
        Some(prev) if packet.cc == (prev + 1) & 0x0f => Continuity::Ok,
        Some(prev) if packet.cc == prev => Continuity::Duplicate,
        Some(_) => Continuity::Gap,
    };
    *last = Some(packet.cc);
    result
}

/// CRC-32/MPEG-2, the checksum of PSI sections. Over a whole section, CRC included, it is 0.
pub(crate) fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Reassembles the PSI sections of one PID from its packets' payloads.
#[derive(Debug, Default)]
pub(crate) struct SectionAssembler {
    buf: Vec<u8>,
    active: bool,
    pub(crate) cc: Option<u8>,
}

impl SectionAssembler {
    /// Forgets a partial section (after packet loss).
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.active = false;
    }

    /// Feeds one packet's payload; returns the complete sections it finished (CRC unchecked),
    /// or `Err(())` for a section whose length is impossible.
    pub(crate) fn push(&mut self, unit_start: bool, payload: &[u8]) -> Result<Vec<Vec<u8>>, ()> {
        let mut sections = Vec::new();
        if unit_start {
            let Some((&pointer, rest)) = payload.split_first() else {
                self.reset();
                return Err(());
            };
            let pointer = usize::from(pointer);
            let Some((tail, head)) = (pointer <= rest.len()).then(|| rest.split_at(pointer)) else {
                self.reset();
                return Err(());
            };
            if self.active {
                self.buf.extend_from_slice(tail);
                // The end of the previous section; anything left over is stuffing.
                let _ = self.drain(&mut sections);
            }
            self.buf.clear();
            self.buf.extend_from_slice(head);
            self.active = true;
        } else if self.active {
            self.buf.extend_from_slice(payload);
        } else {
            return Ok(sections);
        }
        let result = self.drain(&mut sections);
        if result.is_err() {
            self.reset();
        }
        result.map(|()| sections)
    }

    /// Moves every complete section out of `buf`.
    fn drain(&mut self, out: &mut Vec<Vec<u8>>) -> Result<(), ()> {
        loop {
            match self.buf.first() {
                None => return Ok(()),
                Some(0xff) => {
                    // Stuffing: the rest of the packet carries no section.
                    self.reset();
                    return Ok(());
                }
                Some(_) => {}
            }
            if self.buf.len() < 3 {
                return Ok(());
            }
            let len = 3 + usize::from(u16::from_be_bytes([self.buf[1] & 0x0f, self.buf[2]]));
            if len > MAX_SECTION_LEN {
                return Err(());
            }
            if self.buf.len() < len {
                return Ok(());
            }
            out.push(self.buf.drain(..len).collect());
        }
    }
}

/// Why a section was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SectionError {
    /// Too short, wrong table id, or a length that does not add up.
    Malformed,
    /// The CRC does not match.
    Crc,
    /// `current_next_indicator` is 0: the table is not yet in force.
    NotCurrent,
}

/// The body of a long-form section between its 8-byte header and its CRC, after checks.
fn section_body(section: &[u8], table_id: u8) -> Result<&[u8], SectionError> {
    if section.len() < 12 || section[0] != table_id || section[1] & 0x80 == 0 {
        return Err(SectionError::Malformed);
    }
    if crc32_mpeg2(section) != 0 {
        return Err(SectionError::Crc);
    }
    if section[5] & 1 == 0 {
        return Err(SectionError::NotCurrent);
    }
    Ok(&section[8..section.len() - 4])
}

/// The PMT PID of the first program in a PAT (program number 0 is the network PID).
pub(crate) fn parse_pat(section: &[u8]) -> Result<Option<u16>, SectionError> {
    let body = section_body(section, 0x00)?;
    Ok(body
        .chunks_exact(4)
        .find(|e| u16::from_be_bytes([e[0], e[1]]) != 0)
        .map(|e| u16::from_be_bytes([e[2] & 0x1f, e[3]])))
}

/// One elementary stream listed in a PMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EsInfo {
    pub(crate) stream_type: u8,
    pub(crate) pid: u16,
}

/// The elementary streams of a PMT, in order.
pub(crate) fn parse_pmt(section: &[u8]) -> Result<Vec<EsInfo>, SectionError> {
    let body = section_body(section, 0x02)?;
    let info_len = usize::from(u16::from_be_bytes([
        *body.get(2).ok_or(SectionError::Malformed)? & 0x0f,
        *body.get(3).ok_or(SectionError::Malformed)?,
    ]));
    let mut rest = body.get(4 + info_len..).ok_or(SectionError::Malformed)?;
    let mut streams = Vec::new();
    while !rest.is_empty() {
        let entry = rest.get(..5).ok_or(SectionError::Malformed)?;
        let es_info_len = usize::from(u16::from_be_bytes([entry[3] & 0x0f, entry[4]]));
        streams.push(EsInfo {
            stream_type: entry[0],
            pid: u16::from_be_bytes([entry[1] & 0x1f, entry[2]]),
        });
        rest = rest.get(5 + es_info_len..).ok_or(SectionError::Malformed)?;
    }
    Ok(streams)
}

/// A PES packet's header fields that matter here, and where its payload starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PesHeader {
    pub(crate) pts: Option<u64>,
    pub(crate) dts: Option<u64>,
    pub(crate) payload_offset: usize,
}

/// Parses a PES header; `Ok(None)` for stream ids without media (padding, private stream 2,
/// program stream maps and directories).
pub(crate) fn parse_pes_header(pes: &[u8]) -> Result<Option<PesHeader>, &'static str> {
    if pes.len() < 6 || pes[..3] != [0, 0, 1] {
        return Err("it does not start with a PES start code");
    }
    if matches!(
        pes[3],
        0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff
    ) {
        return Ok(None);
    }
    let fixed = pes.get(6..9).ok_or("its header is truncated")?;
    if fixed[0] & 0xc0 != 0x80 {
        return Err("its header marker bits are wrong");
    }
    let payload_offset = 9 + usize::from(fixed[2]);
    let optional = pes
        .get(9..payload_offset)
        .ok_or("its header is longer than the packet")?;
    let ts = |at: usize| -> Result<u64, &'static str> {
        let b = optional
            .get(at..at + 5)
            .ok_or("its header is too short for its timestamps")?;
        Ok((u64::from(b[0] >> 1) & 7) << 30
            | u64::from(b[1]) << 22
            | u64::from(b[2] >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4] >> 1))
    };
    let (pts, dts) = match fixed[1] >> 6 {
        2 => (Some(ts(0)?), None),
        3 => (Some(ts(0)?), Some(ts(5)?)),
        _ => (None, None),
    };
    Ok(Some(PesHeader {
        pts,
        dts,
        payload_offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_known_pat() {
        // ffmpeg's PAT: program 1 on PMT PID 0x1000.
        let pat = [
            0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1,
            0x04, 0xb2,
        ];
        assert_eq!(crc32_mpeg2(&pat), 0);
        assert_eq!(parse_pat(&pat), Ok(Some(0x1000)));
        let mut bad = pat;
        bad[9] ^= 1;
        assert_eq!(parse_pat(&bad), Err(SectionError::Crc));
    }

    #[test]
    fn sections_across_packets() {
        let mut a = SectionAssembler::default();
        let section: Vec<u8> = {
            let mut s = vec![0x02, 0xb0, 0x00];
            s.extend(std::iter::repeat_n(0xaa, 300));
            s[2] = 44; // section_length low byte: 300 = 0x12c
            s[1] |= 0x01;
            s
        };
        let mut first = vec![0u8];
        first.extend_from_slice(&section[..183]);
        assert_eq!(a.push(true, &first), Ok(vec![]));
        let mut second = section[183..].to_vec();
        second.extend(std::iter::repeat_n(0xff, 60));
        assert_eq!(a.push(false, &second), Ok(vec![section[..303].to_vec()]));
        // A pointer field beyond the payload is malformed.
        assert_eq!(a.push(true, &[200, 1, 2]), Err(()));
    }

    #[test]
    fn pes_header() {
        let pes = crate::testing::pes(0xe0, (1 << 33) - 1, Some(90_000), &[9, 9], false);
        let h = parse_pes_header(&pes).unwrap().unwrap();
        assert_eq!(h.payload_offset, 19);
        assert_eq!((h.pts, h.dts), (Some((1 << 33) - 1), Some(90_000)));
        assert_eq!(&pes[h.payload_offset..], &[9, 9]);
        assert!(parse_pes_header(&pes[..12]).is_err());
        assert!(parse_pes_header(&[0, 0, 2, 0xe0, 0, 0, 0x80, 0, 0]).is_err());
        assert_eq!(parse_pes_header(&[0, 0, 1, 0xbe, 0, 0]), Ok(None));
    }
}
