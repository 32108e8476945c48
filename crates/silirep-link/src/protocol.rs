//! What crosses the wire: a fixed 40-byte request header, then the payload its operation
//! implies, then (for a transfer to the server) an 8-byte acknowledgement.
//!
//! ```text
//! header: "SLRPLINK" | op u32 | flags u32 | bytes u64 | message_bytes u64 | seed u64   (LE)
//! sink   (op 1): client sends `bytes`; server replies 8 bytes: checksum, or 0 unasked
//! source (op 2): server sends `bytes`
//! echo   (op 3): `bytes` round trips of `message_bytes`, each echoed back as received
//! ```
//!
//! Payloads are a pseudo-random pattern of one message (`message_bytes`) generated from the
//! seed and repeated: never all zeros (compressing links and caches that
//! shortcut zero pages would flatter them), and reproducible by both sides, so a receiver can
//! check what it got without the sender sending a second copy.

use silirep_core::rng::SplitMix64;
use std::io::{self, Read, Write};

pub const MAGIC: &[u8; 8] = b"SLRPLINK";
pub const HEADER_BYTES: usize = 40;
/// Longest pattern generated: one message, up to the largest message a peer accepts, so every
/// write is a whole message of `message_bytes`.
pub const PATTERN_BYTES: usize = MAX_MESSAGE_BYTES as usize;
/// Flag: the receiver checksums the payload (the verification pass).
pub const FLAG_CHECKSUM: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Sink = 1,
    Source = 2,
    Echo = 3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub checksum: bool,
    /// Sink and source: payload bytes. Echo: the number of round trips.
    pub bytes: u64,
    pub message_bytes: u64,
    pub seed: u64,
}

impl Request {
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&(self.op as u32).to_le_bytes());
        let flags = if self.checksum { FLAG_CHECKSUM } else { 0 };
        out[12..16].copy_from_slice(&flags.to_le_bytes());
        out[16..24].copy_from_slice(&self.bytes.to_le_bytes());
        out[24..32].copy_from_slice(&self.message_bytes.to_le_bytes());
        out[32..40].copy_from_slice(&self.seed.to_le_bytes());
        out
    }

    /// The request in `header`, or what is wrong with it (a client of another program, a
    /// silirep of another protocol, a message size no one can allocate).
    pub fn decode(header: &[u8; HEADER_BYTES]) -> Result<Request, String> {
        if &header[..8] != MAGIC {
            return Err("not a silirep link request (wrong magic bytes)".into());
        }
        let word = |range: std::ops::Range<usize>| {
            let mut b = [0u8; 8];
            b[..range.len()].copy_from_slice(&header[range]);
            u64::from_le_bytes(b)
        };
        let op = match word(8..12) {
            1 => Op::Sink,
            2 => Op::Source,
            3 => Op::Echo,
            other => return Err(format!("unknown operation {other}")),
        };
        let message_bytes = word(24..32);
        if message_bytes == 0 || message_bytes > MAX_MESSAGE_BYTES {
            return Err(format!(
                "message size {message_bytes} bytes outside 1 … {MAX_MESSAGE_BYTES}"
            ));
        }
        Ok(Request {
            op,
            checksum: word(12..16) as u32 & FLAG_CHECKSUM != 0,
            bytes: word(16..24),
            message_bytes,
            seed: word(32..40),
        })
    }
}

/// Largest write a peer accepts: the 1 GiB the standard suite sweeps to.
pub const MAX_MESSAGE_BYTES: u64 = 1 << 30;

/// The payload pattern for `seed`: `min(message_bytes, PATTERN_BYTES)` pseudo-random bytes.
pub fn pattern(seed: u64, message_bytes: u64) -> Vec<u8> {
    let len = (message_bytes as usize).min(PATTERN_BYTES);
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A running checksum over a byte stream, whatever the chunking: FNV-style mixing of 8-byte
/// words (position-sensitive, about a cycle per word, so the verification pass is not
/// limited by it).
#[derive(Debug, Clone, Default)]
pub struct Checksum {
    state: u64,
    pending: [u8; 8],
    pending_len: usize,
    total: u64,
}

impl Checksum {
    pub fn new() -> Checksum {
        Checksum {
            state: 0xcbf2_9ce4_8422_2325,
            ..Default::default()
        }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        if self.pending_len > 0 {
            let take = (8 - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take;
            bytes = &bytes[take..];
            if self.pending_len < 8 {
                return;
            }
            self.mix(u64::from_le_bytes(self.pending));
            self.pending_len = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.mix(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    fn mix(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_mul(0x0100_0000_01b3);
    }

    pub fn finish(&self) -> u64 {
        let mut state = self.state;
        if self.pending_len > 0 {
            let mut last = [0u8; 8];
            last[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
            state = (state ^ u64::from_le_bytes(last)).wrapping_mul(0x0100_0000_01b3);
        }
        (state ^ self.total).wrapping_mul(0x0100_0000_01b3)
    }
}

/// The checksum of `bytes` bytes of `pattern` repeated: what the receiver must find.
pub fn expected_checksum(pattern: &[u8], bytes: u64) -> u64 {
    let mut sum = Checksum::new();
    let mut left = bytes;
    while left > 0 {
        let n = (left as usize).min(pattern.len());
        sum.update(&pattern[..n]);
        left -= n as u64;
    }
    sum.finish()
}

/// Writes `bytes` bytes of `pattern` repeated, in writes of at most `message_bytes`.
pub fn send_pattern(
    stream: &mut impl Write,
    pattern: &[u8],
    bytes: u64,
    message_bytes: u64,
) -> io::Result<()> {
    let mut left = bytes;
    let chunk = (message_bytes as usize).min(pattern.len()).max(1);
    while left > 0 {
        let n = (left as usize).min(chunk);
        stream.write_all(&pattern[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Reads exactly `bytes` bytes into `buffer`-sized reads, checksumming them when asked.
pub fn receive(
    stream: &mut impl Read,
    buffer: &mut [u8],
    bytes: u64,
    checksum: Option<&mut Checksum>,
) -> io::Result<()> {
    let mut left = bytes;
    let mut checksum = checksum;
    while left > 0 {
        let want = (left as usize).min(buffer.len());
        let n = stream.read(&mut buffer[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("connection closed with {left} of {bytes} bytes still to come"),
            ));
        }
        if let Some(sum) = checksum.as_deref_mut() {
            sum.update(&buffer[..n]);
        }
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_are_named() {
        let r = Request {
            op: Op::Source,
            checksum: true,
            bytes: 1 << 30,
            message_bytes: 4096,
            seed: 42,
        };
        assert_eq!(Request::decode(&r.encode()), Ok(r));
        let mut bad = r.encode();
        bad[0] = b'X';
        assert!(Request::decode(&bad).unwrap_err().contains("magic"));
        let mut huge = r;
        huge.message_bytes = 1 << 40;
        assert!(
            Request::decode(&huge.encode())
                .unwrap_err()
                .contains("outside")
        );
        let mut op = r.encode();
        op[8] = 9;
        assert!(
            Request::decode(&op)
                .unwrap_err()
                .contains("unknown operation 9")
        );
    }

    #[test]
    fn checksum_ignores_chunking_and_sees_corruption() {
        let p = pattern(7, 1000);
        assert!(p.iter().any(|b| *b != 0));
        let whole = expected_checksum(&p, 2500);
        // The same 2500 bytes in odd pieces.
        let stream: Vec<u8> = p.iter().cycle().take(2500).copied().collect();
        let mut pieces = Checksum::new();
        for chunk in stream.chunks(7) {
            pieces.update(chunk);
        }
        assert_eq!(pieces.finish(), whole);
        let mut corrupted = stream.clone();
        corrupted[1234] ^= 1;
        let mut c = Checksum::new();
        c.update(&corrupted);
        assert_ne!(c.finish(), whole);
        // A missing tail is not the same stream either.
        let mut short = Checksum::new();
        short.update(&stream[..2499]);
        assert_ne!(short.finish(), whole);
    }

    #[test]
    fn sending_and_receiving_agree_in_memory() {
        let p = pattern(3, 64);
        let mut wire = Vec::new();
        send_pattern(&mut wire, &p, 1000, 64).unwrap();
        assert_eq!(wire.len(), 1000);
        let mut buf = vec![0u8; 100];
        let mut sum = Checksum::new();
        receive(&mut wire.as_slice(), &mut buf, 1000, Some(&mut sum)).unwrap();
        assert_eq!(sum.finish(), expected_checksum(&p, 1000));
        let err = receive(&mut &wire[..10], &mut buf, 1000, None).unwrap_err();
        assert!(err.to_string().contains("990 of 1000 bytes"), "{err}");
    }
}
