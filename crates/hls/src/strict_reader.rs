//! A small strict reader of media playlists for the conformance tests, independent of the
//! renderer: it groups parts into segments as a client does (the parts before an `EXTINF` are
//! that segment's; those after the last one, the open segment's).

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PartLine {
    pub(crate) uri: String,
    pub(crate) duration: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Line {
    Part(PartLine),
    Segment {
        uri: String,
        extinf: f64,
        pdt_ms: Option<i64>,
        discontinuity: bool,
        gap: bool,
    },
    /// Tags that start a segment: discontinuity and date, before its parts.
    Head {
        pdt_ms: Option<i64>,
        discontinuity: bool,
    },
}

#[derive(Debug, Default)]
pub(crate) struct Playlist {
    pub(crate) target_duration: u64,
    pub(crate) media_sequence: u64,
    pub(crate) discontinuity_sequence: u64,
    pub(crate) part_target: Option<f64>,
    pub(crate) part_hold_back: f64,
    pub(crate) hold_back: f64,
    pub(crate) skipped: u64,
    pub(crate) lines: Vec<Line>,
    pub(crate) hint: Option<(u64, u32)>,
    pub(crate) endlist: bool,
}

/// One segment with its parts, as a client groups them: the parts before an `EXTINF` belong to
/// it; the parts after the last one form the open segment.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) msn: u64,
    pub(crate) parts: Vec<PartLine>,
    pub(crate) extinf: Option<f64>,
    pub(crate) pdt_ms: Option<i64>,
    pub(crate) discontinuity: bool,
    pub(crate) gap: bool,
}

impl Group {
    fn empty(msn: u64) -> Group {
        Group {
            msn,
            parts: Vec::new(),
            extinf: None,
            pdt_ms: None,
            discontinuity: false,
            gap: false,
        }
    }
}

pub(crate) fn part_numbers(uri: &str) -> Option<(u64, u32)> {
    let (m, i) = uri
        .strip_prefix("part-")?
        .strip_suffix(".m4s")?
        .split_once('.')?;
    Some((m.parse().ok()?, i.parse().ok()?))
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_once(':')?
        .1
        .split(',')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

pub(crate) fn pdt_ms(v: &str) -> Result<i64, String> {
    // 2024-05-01T12:00:00.000Z: time of day and day of month are enough here.
    let bad = || format!("bad PROGRAM-DATE-TIME {v}");
    let (date, time) = v.split_once('T').ok_or_else(bad)?;
    let day: i64 = date
        .rsplit('-')
        .next()
        .ok_or_else(bad)?
        .parse()
        .map_err(|_| bad())?;
    let time = time.strip_suffix('Z').ok_or_else(bad)?;
    let mut it = time.split(':');
    let h: i64 = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let m: i64 = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let s: f64 = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    Ok((((day * 24 + h) * 60 + m) * 60) * 1000 + (s * 1000.0).round() as i64)
}

impl Playlist {
    pub(crate) fn parse(text: &str) -> Result<Playlist, String> {
        let mut pl = Playlist::default();
        let mut lines = text.lines();
        if lines.next() != Some("#EXTM3U") {
            return Err("no #EXTM3U".into());
        }
        let num = |line: &str, name: &str| -> Result<f64, String> {
            attr(line, name)
                .ok_or_else(|| format!("{name} missing: {line}"))?
                .trim_matches('"')
                .parse()
                .map_err(|_| format!("{name} not a number: {line}"))
        };
        let (mut extinf, mut pdt, mut disc, mut gap) = (None, None, false, false);
        let mut headed = false;
        for line in lines {
            if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                pl.target_duration = v.parse().map_err(|_| line.to_owned())?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                pl.media_sequence = v.parse().map_err(|_| line.to_owned())?;
            } else if let Some(v) = line.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
                pl.discontinuity_sequence = v.parse().map_err(|_| line.to_owned())?;
            } else if line.starts_with("#EXT-X-PART-INF:") {
                pl.part_target = Some(num(line, "PART-TARGET")?);
            } else if line.starts_with("#EXT-X-SERVER-CONTROL:") {
                pl.part_hold_back = num(line, "PART-HOLD-BACK")?;
                pl.hold_back = num(line, "HOLD-BACK")?;
            } else if line.starts_with("#EXT-X-SKIP:") {
                pl.skipped = num(line, "SKIPPED-SEGMENTS")? as u64;
            } else if line.starts_with("#EXT-X-PART:") {
                if !headed {
                    pl.lines.push(Line::Head {
                        pdt_ms: pdt,
                        discontinuity: disc,
                    });
                    headed = true;
                }
                let uri = attr(line, "URI")
                    .ok_or("part without URI")?
                    .trim_matches('"')
                    .to_owned();
                pl.lines.push(Line::Part(PartLine {
                    uri,
                    duration: num(line, "DURATION")?,
                }));
            } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
                let uri = attr(line, "URI")
                    .ok_or("hint without URI")?
                    .trim_matches('"');
                pl.hint = Some(part_numbers(uri).ok_or_else(|| format!("hint {uri}"))?);
            } else if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                pdt = Some(pdt_ms(v)?);
            } else if line == "#EXT-X-DISCONTINUITY" {
                disc = true;
            } else if line == "#EXT-X-GAP" {
                gap = true;
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                extinf = Some(
                    v.trim_end_matches(',')
                        .parse::<f64>()
                        .map_err(|_| line.to_owned())?,
                );
            } else if line == "#EXT-X-ENDLIST" {
                pl.endlist = true;
            } else if !line.starts_with('#') && !line.is_empty() {
                pl.lines.push(Line::Segment {
                    uri: line.to_owned(),
                    extinf: extinf
                        .take()
                        .ok_or_else(|| format!("{line} without EXTINF"))?,
                    pdt_ms: pdt.take(),
                    discontinuity: std::mem::take(&mut disc),
                    gap: std::mem::take(&mut gap),
                });
                headed = false;
            }
        }
        Ok(pl)
    }

    pub(crate) fn segments(&self) -> Vec<&Line> {
        self.lines
            .iter()
            .filter(|l| matches!(l, Line::Segment { .. }))
            .collect()
    }

    pub(crate) fn parts(&self) -> Vec<(u64, u32)> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::Part(p) => part_numbers(&p.uri),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn segment_groups(&self) -> Vec<Group> {
        let mut out = Vec::new();
        let mut msn = self.media_sequence + self.skipped;
        let mut cur = Group::empty(msn);
        for l in &self.lines {
            match l {
                Line::Head {
                    pdt_ms,
                    discontinuity,
                } => {
                    cur.pdt_ms = *pdt_ms;
                    cur.discontinuity = *discontinuity;
                }
                Line::Part(p) => cur.parts.push(p.clone()),
                Line::Segment {
                    extinf,
                    pdt_ms,
                    discontinuity,
                    gap,
                    ..
                } => {
                    cur.extinf = Some(*extinf);
                    if cur.parts.is_empty() {
                        cur.pdt_ms = *pdt_ms;
                        cur.discontinuity = *discontinuity;
                    }
                    cur.gap = *gap;
                    msn += 1;
                    out.push(std::mem::replace(&mut cur, Group::empty(msn)));
                }
            }
        }
        if !cur.parts.is_empty() {
            out.push(cur);
        }
        out
    }
}
