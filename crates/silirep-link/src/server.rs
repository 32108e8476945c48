//! `silirep link serve`: answers link benchmarks from any number of clients, one thread per
//! connection, until stopped. A connection that sends something other than a silirep link
//! request is told why and closed; a client that goes silent is dropped after the timeout,
//! so a dead client never holds the server.

use crate::protocol::{self, Checksum, HEADER_BYTES, Op, Request};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Idle time after which a silent connection is dropped.
    pub timeout: Duration,
    /// Say what each connection did (on stderr).
    pub verbose: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            timeout: Duration::from_secs(30),
            verbose: false,
        }
    }
}

/// Serves on `listener` until `stop` is set (checked between connections and every 100 ms
/// while idle).
pub fn serve(
    listener: TcpListener,
    options: ServeOptions,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    std::thread::scope(|scope| {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, addr)) => {
                    let options = options.clone();
                    scope.spawn(move || {
                        let outcome = handle(stream, &options);
                        if options.verbose || outcome.is_err() {
                            match outcome {
                                Ok(n) => eprintln!("{addr}: {n} request(s) served"),
                                Err(e) => eprintln!("{addr}: {e}"),
                            }
                        }
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
}

/// One connection: requests until the client closes it. Returns how many were served.
fn handle(mut stream: TcpStream, options: &ServeOptions) -> io::Result<u64> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(options.timeout))?;
    stream.set_write_timeout(Some(options.timeout))?;
    let mut served = 0;
    let mut buffer = Vec::new();
    let mut pattern_for: Option<(u64, u64, Vec<u8>)> = None;
    loop {
        let mut header = [0u8; HEADER_BYTES];
        if !read_header(&mut stream, &mut header)? {
            return Ok(served);
        }
        let request = match Request::decode(&header) {
            Ok(r) => r,
            Err(why) => {
                let _ = stream.write_all(format!("silirep link: {why}\n").as_bytes());
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
        };
        let chunk = (request.message_bytes as usize).min(protocol::PATTERN_BYTES);
        if buffer.len() < chunk {
            buffer.resize(chunk, 0);
        }
        match request.op {
            Op::Sink => {
                let mut sum = Checksum::new();
                let checksum = request.checksum.then_some(&mut sum);
                protocol::receive(&mut stream, &mut buffer[..chunk], request.bytes, checksum)?;
                let reply = if request.checksum { sum.finish() } else { 0 };
                stream.write_all(&reply.to_le_bytes())?;
            }
            Op::Source => {
                let key = (request.seed, request.message_bytes);
                if pattern_for.as_ref().map(|(s, m, _)| (*s, *m)) != Some(key) {
                    pattern_for = Some((key.0, key.1, protocol::pattern(key.0, key.1)));
                }
                let pattern = &pattern_for.as_ref().expect("set above").2;
                protocol::send_pattern(&mut stream, pattern, request.bytes, request.message_bytes)?;
            }
            Op::Echo => {
                let message = request.message_bytes as usize;
                if buffer.len() < message {
                    buffer.resize(message, 0);
                }
                for _ in 0..request.bytes {
                    stream.read_exact(&mut buffer[..message])?;
                    stream.write_all(&buffer[..message])?;
                }
            }
        }
        served += 1;
    }
}

/// Reads a whole header; `false` when the client closed the connection cleanly first.
fn read_header(stream: &mut TcpStream, header: &mut [u8; HEADER_BYTES]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < HEADER_BYTES {
        let n = stream.read(&mut header[filled..])?;
        if n == 0 {
            return if filled == 0 {
                Ok(false)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a request header",
                ))
            };
        }
        filled += n;
    }
    Ok(true)
}
