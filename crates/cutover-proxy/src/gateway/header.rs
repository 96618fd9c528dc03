//! The header a gateway sends before a connection's bytes: PROXY protocol
//! v2 with the caller's address and the route's name. Parsed by `ppp`;
//! what is ours is reading exactly the header off the socket, no byte of
//! the request after it.

use std::io;
use std::net::{IpAddr, SocketAddr};

use ppp::v2::{Addresses, Builder, Command, Header, Protocol, Version};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The TLV that names the route: the first of the types PROXY v2 leaves
/// to applications (`PP2_TYPE_MIN_CUSTOM`).
pub const ROUTE_TLV: u8 = 0xE0;

/// The 12-byte signature, version and command, family, and length.
const FIXED: usize = 16;

/// The most an edge reads after the fixed part: an IPv6 address block and
/// one TLV of a route name (`project/service`, two DNS labels and a slash).
const MAX_VARIABLE: usize = 36 + 3 + 128;

/// What the header said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub route: String,
    /// The caller, as the gateway saw it.
    pub client: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("the connection closed or failed before its header: {0}")]
    Io(#[from] io::Error),
    #[error("not a PROXY protocol v2 header: {0}")]
    Malformed(#[from] ppp::v2::ParseError),
    #[error("a header of {0} bytes after the fixed part, more than a route needs")]
    TooLong(usize),
    #[error("the header names no route (TLV 0xE0)")]
    NoRoute,
    #[error("the header carries no caller's address")]
    NoAddress,
}

/// The header for a connection from `client`, accepted at `local`, for
/// `route`.
pub fn encode(route: &str, client: SocketAddr, local: SocketAddr) -> io::Result<Vec<u8>> {
    let addresses: Addresses = same_family(client, local).into();
    Builder::with_addresses(Version::Two | Command::Proxy, Protocol::Stream, addresses)
        .write_tlv(ROUTE_TLV, route.as_bytes())?
        .build()
}

/// PROXY v2 puts both addresses in one family: an IPv4 one beside an IPv6
/// one is written IPv4-mapped.
fn same_family(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    let v6 = |s: SocketAddr| match s.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), s.port()),
        IpAddr::V6(_) => s,
    };
    match (a, b) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) | (SocketAddr::V6(_), SocketAddr::V6(_)) => (a, b),
        _ => (v6(a), v6(b)),
    }
}

/// The header in `bytes`, which hold it whole and nothing after it.
pub fn decode(bytes: &[u8]) -> Result<Relayed, HeaderError> {
    let header = Header::try_from(bytes)?;
    let client = match header.addresses {
        Addresses::IPv4(a) => SocketAddr::new(a.source_address.into(), a.source_port),
        Addresses::IPv6(a) => SocketAddr::new(a.source_address.into(), a.source_port),
        Addresses::Unspecified | Addresses::Unix(_) => return Err(HeaderError::NoAddress),
    };
    let route = header
        .tlvs()
        .filter_map(Result::ok)
        .find(|tlv| tlv.kind == ROUTE_TLV)
        .and_then(|tlv| String::from_utf8(tlv.value.into_owned()).ok())
        .filter(|r| !r.is_empty())
        .ok_or(HeaderError::NoRoute)?;
    Ok(Relayed { route, client })
}

/// Reads exactly one header off `stream`: the fixed part, then the length
/// it announces (bounded), so the request after it stays unread.
pub async fn read(stream: &mut TcpStream) -> Result<Relayed, HeaderError> {
    let mut buf = vec![0u8; FIXED];
    stream.read_exact(&mut buf).await?;
    // The signature and version are checked before the length is trusted.
    match Header::try_from(&buf[..]) {
        Err(ppp::v2::ParseError::Partial(..)) | Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    let variable = u16::from_be_bytes([buf[FIXED - 2], buf[FIXED - 1]]) as usize;
    if variable > MAX_VARIABLE {
        return Err(HeaderError::TooLong(variable));
    }
    buf.resize(FIXED + variable, 0);
    stream.read_exact(&mut buf[FIXED..]).await?;
    decode(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_header_reads_back_as_written() {
        for (client, local) in [
            (addr("10.0.3.7:41000"), addr("10.0.3.2:8080")),
            (addr("[fd00::7]:41000"), addr("[fd00::2]:8080")),
            (addr("10.0.3.7:41000"), addr("[fd00::2]:8080")),
        ] {
            let bytes = encode("shop/api", client, local).unwrap();
            let got = decode(&bytes).unwrap();
            assert_eq!(got.route, "shop/api");
            let mapped = match client.ip() {
                IpAddr::V4(ip) if local.is_ipv6() => IpAddr::V6(ip.to_ipv6_mapped()),
                ip => ip,
            };
            assert_eq!(got.client, SocketAddr::new(mapped, client.port()));
        }
    }

    #[test]
    fn a_header_without_a_route_is_refused() {
        let bytes = Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Stream,
            (addr("10.0.0.1:1"), addr("10.0.0.2:2")),
        )
        .build()
        .unwrap();
        assert!(matches!(decode(&bytes), Err(HeaderError::NoRoute)));
    }

    #[tokio::test]
    async fn the_edge_reads_the_header_and_leaves_the_request() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut s = TcpStream::connect(at).await.unwrap();
            let mut bytes = encode("shop/api", addr("10.0.0.9:5000"), at).unwrap();
            bytes.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
            s.write_all(&bytes).await.unwrap();
            s
        });
        let (mut stream, _) = listener.accept().await.unwrap();
        let got = read(&mut stream).await.unwrap();
        assert_eq!(got.route, "shop/api");
        assert_eq!(got.client, addr("10.0.0.9:5000"));
        let _client = client.await.unwrap();
        let mut rest = [0u8; 18];
        stream.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"GET / HTTP/1.1\r\n\r\n");
    }

    #[tokio::test]
    async fn a_plain_request_or_a_huge_length_is_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        let mut huge = ppp::v2::PROTOCOL_PREFIX.to_vec();
        huge.extend([0x21, 0x11, 0xff, 0xff]);
        for (bytes, want) in [
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), "not a PROXY"),
            (huge, "more than a route needs"),
        ] {
            let send = tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut s = TcpStream::connect(at).await.unwrap();
                s.write_all(&bytes).await.unwrap();
                s
            });
            let (mut stream, _) = listener.accept().await.unwrap();
            let err = read(&mut stream).await.unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
            drop(send.await.unwrap());
        }
    }

    proptest! {
        /// Whatever the bytes, decoding answers: a header or an error,
        /// never a panic.
        #[test]
        fn any_bytes_decode_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut input = ppp::v2::PROTOCOL_PREFIX.to_vec();
            input.extend(&bytes);
            let _ = decode(&input);
            let _ = decode(&bytes);
        }

        #[test]
        fn any_route_round_trips(route in "[a-z0-9_-]{1,40}/[a-z0-9_-]{1,40}", port in 1u16..) {
            let bytes = encode(&route, SocketAddr::from(([10, 1, 2, 3], port)), addr("10.0.0.2:80")).unwrap();
            prop_assert_eq!(decode(&bytes).unwrap().route, route);
        }
    }
}
