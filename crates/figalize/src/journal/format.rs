//! The journal's file format: pure functions over bytes, no I/O.
//!
//! A segment starts with the 8-byte [`MAGIC`], then records, each
//! `length: u32 LE | crc32(payload): u32 LE | payload`, the payload the JSON of an [`Entry`],
//! then zeros to the end of the file: segments are made at their full size, and a length of
//! zero (no entry is empty) marks where the records end. JSON keeps the files readable with
//! `strings` and lets a later version add fields; the checksum tells a torn or damaged record
//! from a whole one.

use serde::{Deserialize, Serialize};

/// The first bytes of every segment: the format and its version.
pub const MAGIC: &[u8; 8] = b"FIGJRNL1";

/// A record's length and checksum.
const RECORD_HEADER: usize = 8;

/// Largest payload a record may have. Entries are bounded by the phrase limits (a few KiB at
/// most); a length over this is damage, not a record.
const MAX_PAYLOAD: usize = 64 * 1024;

/// One accepted figalization, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Idempotency key of its history row: a replayed entry is stored once.
    pub id: String,
    /// The phrase as typed (normalised).
    pub original: String,
    /// The transformed phrase; its image job renders this text.
    pub figalized: String,
    /// The request that produced it, for following it in the logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Appends `entry` as one record to `out`.
pub fn encode(entry: &Entry, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER]);
    serde_json::to_writer(&mut *out, entry).expect("an entry always serialises");
    let payload = &out[start + RECORD_HEADER..];
    let length = u32::try_from(payload.len()).expect("an entry is far below 4 GiB");
    let checksum = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
    out[start + 4..start + RECORD_HEADER].copy_from_slice(&checksum.to_le_bytes());
}

/// What a segment's bytes hold.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The whole records, in order, up to the first damage.
    pub entries: Vec<Entry>,
    /// Where the first damaged or torn record starts, when one does; what follows is skipped.
    pub damaged_at: Option<usize>,
}

/// Why a file is not a segment at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a journal segment: its first bytes are not {MAGIC:?}")]
pub struct NotASegment;

/// Reads a segment's records, up to the zeros that follow the last one. Reading stops at the
/// first record that is cut short, longer than any entry can be, fails its checksum or is not
/// an entry's JSON: a crash mid-write leaves such a tail, and nothing after a damaged record
/// can be trusted to start where it seems to.
pub fn parse(data: &[u8]) -> Result<Parsed, NotASegment> {
    let Some(mut rest) = data.strip_prefix(MAGIC.as_slice()) else {
        return Err(NotASegment);
    };
    let mut parsed = Parsed::default();
    while !rest.is_empty() {
        let offset = data.len() - rest.len();
        // A length of zero: the end, if only zeros follow.
        if rest.starts_with(&[0; 4]) && rest.iter().all(|byte| *byte == 0) {
            break;
        }
        let Some((entry, length)) = record(rest) else {
            parsed.damaged_at = Some(offset);
            break;
        };
        parsed.entries.push(entry);
        rest = &rest[length..];
    }
    Ok(parsed)
}

/// The record at the start of `data` and its length with its header, if it is whole.
fn record(data: &[u8]) -> Option<(Entry, usize)> {
    let header = data.get(..RECORD_HEADER)?;
    let length = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let checksum = u32::from_le_bytes(header[4..].try_into().ok()?);
    if length > MAX_PAYLOAD {
        return None;
    }
    let payload = data.get(RECORD_HEADER..RECORD_HEADER + length)?;
    if crc32fast::hash(payload) != checksum {
        return None;
    }
    let entry = serde_json::from_slice(payload).ok()?;
    Some((entry, RECORD_HEADER + length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32) -> Entry {
        Entry {
            id: format!("id-{n}"),
            original: "велосипед".into(),
            figalized: "Фигосипед".into(),
            request_id: n.is_multiple_of(2).then(|| format!("request-{n}")),
        }
    }

    fn segment(count: u32) -> Vec<u8> {
        let mut data = MAGIC.to_vec();
        for n in 0..count {
            encode(&entry(n), &mut data);
        }
        data
    }

    #[test]
    fn whole_records_read_back_as_they_were_written() {
        let parsed = parse(&segment(3)).unwrap();
        assert_eq!(parsed.entries, (0..3).map(entry).collect::<Vec<_>>());
        assert_eq!(parsed.damaged_at, None);
        assert_eq!(parse(MAGIC).unwrap(), Parsed::default());
    }

    #[test]
    fn the_zeros_after_the_last_record_are_the_unwritten_rest_of_the_segment() {
        let mut data = segment(3);
        data.resize(4096, 0);
        let parsed = parse(&data).unwrap();
        assert_eq!(parsed.entries, (0..3).map(entry).collect::<Vec<_>>());
        assert_eq!(parsed.damaged_at, None);
        let mut empty = MAGIC.to_vec();
        empty.resize(4096, 0);
        assert_eq!(parse(&empty).unwrap(), Parsed::default());
    }

    #[test]
    fn a_record_whose_end_never_reached_the_disk_is_damage() {
        // The last record's final bytes still zero, as the segment was made: a crash before
        // its sync finished.
        let mut data = segment(3);
        let two = segment(2).len();
        let whole = data.len();
        data[whole - 5..].fill(0);
        data.resize(4096, 0);
        let parsed = parse(&data).unwrap();
        assert_eq!(parsed.entries.len(), 2);
        assert_eq!(parsed.damaged_at, Some(two));
        // A record written after a stretch that never was: zeros, then bytes.
        let mut gap = segment(1);
        let one = gap.len();
        gap.resize(one + 64, 0);
        encode(&entry(5), &mut gap);
        assert_eq!(parse(&gap).unwrap().damaged_at, Some(one));
    }

    #[test]
    fn a_record_cut_anywhere_ends_the_segment_where_it_starts() {
        let whole = segment(3);
        let two = segment(2).len();
        for cut in two + 1..whole.len() {
            let parsed = parse(&whole[..cut]).unwrap();
            assert_eq!(parsed.entries.len(), 2, "cut at {cut}");
            assert_eq!(parsed.damaged_at, Some(two), "cut at {cut}");
        }
    }

    #[test]
    fn a_changed_byte_fails_the_checksum_and_ends_the_segment() {
        let mut data = segment(3);
        let one = segment(1).len();
        // A byte of the second record's payload.
        data[one + RECORD_HEADER + 5] ^= 0x20;
        let parsed = parse(&data).unwrap();
        assert_eq!(parsed.entries, vec![entry(0)]);
        assert_eq!(parsed.damaged_at, Some(one));
    }

    #[test]
    fn garbage_after_the_records_and_absurd_lengths_are_damage() {
        let mut data = segment(1);
        let one = data.len();
        data.extend_from_slice(&[0xff; 64]);
        assert_eq!(parse(&data).unwrap().damaged_at, Some(one));
        // An empty record with a checksum, which no writer makes.
        let mut empty = segment(1);
        empty.extend_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(parse(&empty).unwrap().entries.len(), 1);
        assert_eq!(parse(&empty).unwrap().damaged_at, Some(one));
    }

    #[test]
    fn a_file_without_the_magic_is_not_a_segment() {
        assert_eq!(parse(b"FIGJRNL2"), Err(NotASegment));
        assert_eq!(parse(b""), Err(NotASegment));
        assert_eq!(parse(b"FIG"), Err(NotASegment));
    }
}
