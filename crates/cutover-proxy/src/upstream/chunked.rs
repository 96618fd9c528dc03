//! The chunked transfer coding of a response body (RFC 9112 §7.1), decoded
//! from whatever part of it the buffer holds.
//!
//! Lifecycle: `Size` (hex digits) → `Extension` (to the line's end) →
//! `Data` (that many bytes) → `DataEnd` (its CRLF) → `Size` again; a size
//! of 0 goes to `Trailers` (header lines up to an empty one) → `Done`.
//! Lines end in CRLF, nothing else: a bare LF is an error, since two
//! parsers that disagree on line ends are how smuggling starts.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Longest chunk-size line (with extensions) and trailer section accepted.
const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size { size: u64, digits: u8 },
    Extension { size: u64, len: usize },
    Lf { size: u64 },
    Data { left: u64 },
    DataCr,
    DataLf,
    Trailers,
    Done,
}

#[derive(Debug)]
pub(super) struct Chunked {
    state: State,
}

/// What the buffer gave.
#[derive(Debug, PartialEq)]
pub(super) enum Item {
    Data(Bytes),
    /// The last chunk and any trailers: the body is complete.
    End(Option<HeaderMap>),
}

#[derive(Debug, PartialEq)]
pub(super) struct ChunkError(pub &'static str);

impl Chunked {
    pub(super) fn new() -> Chunked {
        Chunked {
            state: State::Size { size: 0, digits: 0 },
        }
    }

    /// The next item the buffer's bytes make, consuming them; `None` when
    /// more bytes are needed.
    pub(super) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, ChunkError> {
        loop {
            if let State::Data { left } = self.state {
                if buf.is_empty() {
                    return Ok(None);
                }
                let n = (left.min(buf.len() as u64)) as usize;
                self.state = if n as u64 == left {
                    State::DataCr
                } else {
                    State::Data {
                        left: left - n as u64,
                    }
                };
                return Ok(Some(Item::Data(buf.split_to(n).freeze())));
            }
            if self.state == State::Trailers {
                return self.trailers(buf);
            }
            if self.state == State::Done {
                return Ok(Some(Item::End(None)));
            }
            let Some(&b) = buf.first() else {
                return Ok(None);
            };
            buf.advance(1);
            self.state = match (self.state, b) {
                (State::Size { size, digits }, _) if b.is_ascii_hexdigit() => {
                    if digits == 16 {
                        return Err(ChunkError("a chunk size is too large"));
                    }
                    let d = (b as char).to_digit(16).expect("a hex digit") as u64;
                    State::Size {
                        size: size << 4 | d,
                        digits: digits + 1,
                    }
                }
                (State::Size { digits: 0, .. }, _) => {
                    return Err(ChunkError("a chunk has no size"))
                }
                (State::Size { size, .. }, b';' | b' ' | b'\t') => {
                    State::Extension { size, len: 0 }
                }
                (State::Size { size, .. } | State::Extension { size, .. }, b'\r') => {
                    State::Lf { size }
                }
                (State::Size { .. }, _) => {
                    return Err(ChunkError("a chunk size is not hexadecimal"))
                }
                (State::Extension { len, .. }, _) if len >= MAX_LINE => {
                    return Err(ChunkError("a chunk extension is too long"))
                }
                (State::Extension { size, len }, b) if b != b'\n' => {
                    State::Extension { size, len: len + 1 }
                }
                (State::Lf { size: 0 }, b'\n') => State::Trailers,
                (State::Lf { size }, b'\n') => State::Data { left: size },
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataLf, b'\n') => State::Size { size: 0, digits: 0 },
                _ => return Err(ChunkError("a chunk line does not end in CRLF")),
            };
        }
    }

    /// Trailer lines up to the empty one, once they are all in the buffer.
    fn trailers(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, ChunkError> {
        if buf.starts_with(b"\r\n") {
            buf.advance(2);
            self.state = State::Done;
            return Ok(Some(Item::End(None)));
        }
        // Trailers are rare: a plain search is enough.
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if buf.len() > MAX_TRAILERS {
                return Err(ChunkError("the trailers are too large"));
            }
            if buf.first() == Some(&b'\n') || (buf.len() >= 2 && buf[0] == b'\r' && buf[1] != b'\n')
            {
                return Err(ChunkError("a chunk line does not end in CRLF"));
            }
            return Ok(None);
        };
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let section = &buf[..end + 4];
        let parsed = match httparse::parse_headers(section, &mut slots) {
            Ok(httparse::Status::Complete((_, parsed))) => parsed,
            _ => return Err(ChunkError("the trailers are malformed")),
        };
        let mut map = HeaderMap::with_capacity(parsed.len());
        for h in parsed {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(h.name.as_bytes()),
                HeaderValue::from_bytes(h.value),
            ) else {
                return Err(ChunkError("the trailers are malformed"));
            };
            map.append(name, value);
        }
        buf.advance(end + 4);
        self.state = State::Done;
        Ok(Some(Item::End(Some(map))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `wire` in pieces cut at `cuts`, as reads would deliver it.
    fn decode_in_pieces(
        wire: &[u8],
        cuts: &[usize],
    ) -> Result<(Vec<u8>, Option<HeaderMap>, BytesMut), ChunkError> {
        let mut dec = Chunked::new();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        points.push(wire.len());
        points.sort_unstable();
        let mut fed = 0;
        for p in points {
            buf.extend_from_slice(&wire[fed..p]);
            fed = p;
            while let Some(item) = dec.decode(&mut buf)? {
                match item {
                    Item::Data(d) => body.extend_from_slice(&d),
                    Item::End(t) => {
                        // What was not fed yet follows the body too.
                        buf.extend_from_slice(&wire[fed..]);
                        return Ok((body, t, buf));
                    }
                }
            }
        }
        Err(ChunkError("incomplete"))
    }

    fn encode(chunks: &[Vec<u8>], ext: bool) -> Vec<u8> {
        let mut w = Vec::new();
        for c in chunks.iter().filter(|c| !c.is_empty()) {
            w.extend_from_slice(format!("{:X}", c.len()).as_bytes());
            if ext {
                w.extend_from_slice(b";name=\"v\"");
            }
            w.extend_from_slice(b"\r\n");
            w.extend_from_slice(c);
            w.extend_from_slice(b"\r\n");
        }
        w.extend_from_slice(b"0\r\n\r\n");
        w
    }

    proptest! {
        /// However the wire is cut into reads, the body is the chunks'
        /// bytes in order, and what follows the body stays in the buffer.
        #[test]
        fn any_split_gives_the_same_body(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
            ext in any::<bool>(),
        ) {
            let mut wire = encode(&chunks, ext);
            wire.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            let (body, trailers, rest) = decode_in_pieces(&wire, &cuts).unwrap();
            prop_assert_eq!(body, chunks.concat());
            prop_assert!(trailers.is_none());
            prop_assert_eq!(&rest[..], b"HTTP/1.1 200 OK\r\n");
        }

        /// Random bytes are an error or a body, never a panic or a hang.
        #[test]
        fn random_bytes_never_panic(wire in proptest::collection::vec(any::<u8>(), 0..200), cuts in proptest::collection::vec(any::<usize>(), 0..6)) {
            let _ = decode_in_pieces(&wire, &cuts);
        }
    }

    #[test]
    fn trailers_end_the_body() {
        let wire = b"3\r\nabc\r\n0\r\nX-Sum: 9\r\nX-B: c\r\n\r\n";
        for cut in 0..wire.len() {
            let (body, trailers, rest) = decode_in_pieces(wire, &[cut]).unwrap();
            assert_eq!(body, b"abc");
            let t = trailers.unwrap();
            assert_eq!(
                (t["x-sum"].as_bytes(), t["x-b"].as_bytes()),
                (&b"9"[..], &b"c"[..])
            );
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn framing_errors_are_errors() {
        for wire in [
            &b"3\nabc\r\n0\r\n\r\n"[..],
            b"3\r\nabcd\r\n0\r\n\r\n",
            b"x\r\n",
            b"\r\n",
            b"11111111111111111\r\n",
            b"-3\r\nabc\r\n0\r\n\r\n",
            b"3\r\nabc\r\n0\r\n\n",
            b"0\r\nbad trailer\r\n\r\n",
        ] {
            assert!(
                decode_in_pieces(wire, &[]).is_err(),
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }
}
