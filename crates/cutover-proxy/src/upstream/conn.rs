//! One upstream connection: the socket, what was read past the current
//! message, and the buffer request heads are written from.

use std::io;

use bytes::BytesMut;
use tokio::net::TcpStream;

/// Read buffer to start with: a typical response head and a small body
/// arrive in one read.
const READ_BUF: usize = 8 * 1024;

pub(crate) struct Conn {
    stream: TcpStream,
    /// Bytes read and not yet used: the rest of a head, body bytes.
    buf: BytesMut,
    /// The request head being written, kept to spare an allocation each.
    wbuf: Vec<u8>,
    /// Responses read on it; a connection that carried none is fresh.
    served: u64,
}

impl Conn {
    pub(crate) fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: BytesMut::with_capacity(READ_BUF),
            wbuf: Vec::with_capacity(1024),
            served: 0,
        }
    }

    /// It came from the pool: the origin may have closed it meanwhile.
    pub(crate) fn reused(&self) -> bool {
        self.served > 0
    }

    pub(super) fn served(&mut self) {
        self.served += 1;
    }

    pub(super) fn parts(&mut self) -> (&mut TcpStream, &mut BytesMut, &mut Vec<u8>) {
        (&mut self.stream, &mut self.buf, &mut self.wbuf)
    }

    pub(super) fn buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    pub(super) fn has_leftover(&self) -> bool {
        !self.buf.is_empty()
    }

    pub(super) fn into_parts(self) -> (TcpStream, BytesMut) {
        (self.stream, self.buf)
    }

    /// For a connection that sat in the pool: still open, with nothing
    /// unasked-for to read. One non-blocking read, which costs a syscall,
    /// so the pool only asks it of connections idle long enough for an
    /// origin's keep-alive timeout to have closed them.
    pub(crate) fn still_open(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}
