//! The client side: `silirep measure --peer HOST:PORT` prepares these kernels against a
//! `silirep link serve` peer. Connections open when a configuration is prepared and stay open
//! across its iterations, as iperf3's do; each timed iteration moves the configuration's
//! bytes, split evenly over its streams, and lasts from the moment all streams start to the
//! last byte delivered (for transfers to the peer, its acknowledgement of the last byte).

use crate::protocol::{self, Checksum, Op, Request};
use silirep_core::schema::{Link, Topology, TopologyDevice, Verification, VerificationStatus};
use silirep_core::{KernelError, KernelSpec, LinkDirection, NetworkProtocol, PreparedKernel};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Why the peer could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerError(pub String);

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A peer to measure against, and what happened to it so far in this run.
pub struct LinkClient {
    peer: String,
    address: SocketAddr,
    timeout: Duration,
    /// Set once the peer stopped answering: later configurations fail at once, naming the
    /// first failure, instead of each waiting out a timeout.
    dead: Arc<Mutex<Option<String>>>,
}

impl LinkClient {
    /// `peer` as `HOST:PORT`; `timeout` bounds connecting and every read and write.
    pub fn new(peer: &str, timeout: Duration) -> Result<LinkClient, PeerError> {
        let address = peer
            .to_socket_addrs()
            .map_err(|e| PeerError(format!("--peer {peer}: cannot resolve: {e}")))?
            .next()
            .ok_or_else(|| PeerError(format!("--peer {peer}: no address")))?;
        Ok(LinkClient {
            peer: peer.to_string(),
            address,
            timeout,
            dead: Arc::new(Mutex::new(None)),
        })
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    pub fn prepare(
        &mut self,
        spec: &KernelSpec,
        seed: u64,
    ) -> Result<Box<dyn PreparedKernel + '_>, KernelError> {
        if let Some(first) = self.dead.lock().expect("not poisoned").clone() {
            return Err(KernelError::Backend(format!(
                "peer {} stopped answering earlier in this run ({first}); not retried",
                self.peer
            )));
        }
        let link = Connection {
            peer: self.peer.clone(),
            address: self.address,
            timeout: self.timeout,
            dead: Arc::clone(&self.dead),
        };
        Ok(match spec {
            KernelSpec::NetworkTransfer {
                protocol: NetworkProtocol::Tcp,
                peer: None,
                direction,
                streams,
                message_bytes,
                bytes,
            } => Box::new(Transfer::prepare(
                link,
                *direction,
                *streams,
                *message_bytes,
                *bytes,
                seed,
            )?),
            KernelSpec::NetworkRoundTrip { message_bytes } => {
                Box::new(RoundTrip::prepare(link, *message_bytes, seed)?)
            }
            // A named peer or UDP describes another tool's run; this client measures TCP to
            // the peer it was given.
            other @ KernelSpec::NetworkTransfer { .. } => {
                return Err(KernelError::Unsupported(format!(
                    "{} {}: the link client measures TCP to its own peer",
                    other.name(),
                    other.params_label()
                )));
            }
            other => {
                return Err(KernelError::Unsupported(format!(
                    "{} is not a network kernel",
                    other.name()
                )));
            }
        })
    }
}

/// How to reach the peer, and where to record that it died.
struct Connection {
    peer: String,
    address: SocketAddr,
    timeout: Duration,
    dead: Arc<Mutex<Option<String>>>,
}

impl Connection {
    fn open(&self) -> Result<TcpStream, KernelError> {
        let stream = TcpStream::connect_timeout(&self.address, self.timeout)
            .map_err(|e| self.failed("connecting", e))?;
        let setup = || -> io::Result<()> {
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(self.timeout))?;
            stream.set_write_timeout(Some(self.timeout))
        };
        setup().map_err(|e| self.failed("setting up the connection", e))?;
        Ok(stream)
    }

    /// A socket error as a kernel error naming the peer; errors that mean the peer is gone
    /// also mark it dead for the rest of the run.
    fn failed(&self, doing: &str, e: io::Error) -> KernelError {
        let what = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
                "no answer within {:.0} s while {doing}",
                self.timeout.as_secs_f64()
            ),
            _ => format!("{doing}: {e}"),
        };
        let gone = matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::TimedOut
                | io::ErrorKind::WouldBlock
                | io::ErrorKind::NotConnected
        );
        if gone {
            let mut dead = self.dead.lock().expect("not poisoned");
            dead.get_or_insert_with(|| what.clone());
        }
        KernelError::Backend(format!("peer {}: {what}", self.peer))
    }

    fn topology(&self, stream: &TcpStream) -> Topology {
        let local = stream.local_addr().ok();
        let mut attributes =
            BTreeMap::from([("peer_address".to_string(), self.address.to_string())]);
        if let Some(local) = local {
            attributes.insert("local_address".into(), local.to_string());
        }
        let interface = local.and_then(|l| interface_of(&l));
        if let Some(name) = &interface {
            attributes.insert("interface".into(), name.clone());
            for (key, file) in [("mtu", "mtu"), ("speed_mbit_per_s", "speed")] {
                if let Ok(v) = std::fs::read_to_string(format!("/sys/class/net/{name}/{file}")) {
                    let v = v.trim();
                    // Virtual interfaces report -1 for speed: not a figure.
                    if !v.is_empty() && !v.starts_with('-') {
                        attributes.insert(key.into(), v.to_string());
                    }
                }
            }
        }
        let label = match (&interface, self.address.ip().is_loopback()) {
            (_, true) => "TCP over loopback".to_string(),
            (Some(name), false) => format!("TCP over {name}"),
            (None, false) => "TCP".to_string(),
        };
        Topology {
            devices: vec![
                TopologyDevice {
                    id: "host".into(),
                    name: local.map(|l| l.ip().to_string()).unwrap_or_default(),
                    pci_bus_id: None,
                },
                TopologyDevice {
                    id: "peer".into(),
                    name: self.peer.clone(),
                    pci_bus_id: None,
                },
            ],
            links: vec![Link {
                from: "host".into(),
                to: "peer".into(),
                kind: "tcp".into(),
                label,
                attributes,
            }],
        }
    }
}

/// The network interface holding `local`'s address (Linux: `ip -o addr`); `None` elsewhere.
fn interface_of(local: &SocketAddr) -> Option<String> {
    let out = std::process::Command::new("ip")
        .args(["-o", "addr", "show"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let ip = local.ip().to_string();
    text.lines().find_map(|line| {
        // `2: eth0    inet 10.0.0.2/24 brd ...`
        let mut fields = line.split_whitespace();
        let name = fields.nth(1)?;
        let addr = fields.nth(1)?;
        (addr.split('/').next() == Some(ip.as_str())).then(|| name.to_string())
    })
}

/// A check with no tolerance: passed when nothing differed.
fn exact_check(wrong: usize, method: String) -> Verification {
    Verification {
        status: if wrong == 0 {
            VerificationStatus::Passed
        } else {
            VerificationStatus::Failed
        },
        method,
        max_abs_error: None,
        max_rel_error: None,
        tolerance: None,
    }
}

/// Throughput to or from the peer over `streams` connections.
struct Transfer {
    link: Connection,
    direction: LinkDirection,
    streams: Vec<TcpStream>,
    /// Each stream's share of the iteration's bytes (the first ones take the remainder).
    shares: Vec<u64>,
    message_bytes: u64,
    seeds: Vec<u64>,
    /// Per stream: the payload pattern (sent to the peer, or expected from it).
    patterns: Vec<Vec<u8>>,
    /// Per stream: where received bytes land.
    buffers: Vec<Vec<u8>>,
    topology: Topology,
}

impl Transfer {
    fn prepare(
        link: Connection,
        direction: LinkDirection,
        streams: u32,
        message_bytes: u64,
        bytes: u64,
        seed: u64,
    ) -> Result<Transfer, KernelError> {
        if streams == 0 || message_bytes == 0 || message_bytes > protocol::MAX_MESSAGE_BYTES {
            return Err(KernelError::Unsupported(format!(
                "{streams} stream(s) of {message_bytes}-byte messages: need ≥ 1 stream and \
                 messages of 1 … {} bytes",
                protocol::MAX_MESSAGE_BYTES
            )));
        }
        let n = u64::from(streams);
        let shares: Vec<u64> = (0..n)
            .map(|i| bytes / n + u64::from(i < bytes % n))
            .collect();
        let seeds: Vec<u64> = (0..n).map(|i| seed.wrapping_add(i)).collect();
        let patterns: Vec<Vec<u8>> = seeds
            .iter()
            .map(|s| protocol::pattern(*s, message_bytes))
            .collect();
        let buffers = match direction {
            LinkDirection::FromPeer => (0..n).map(|_| vec![0u8; message_bytes as usize]).collect(),
            LinkDirection::ToPeer => Vec::new(),
        };
        let streams = (0..n).map(|_| link.open()).collect::<Result<Vec<_>, _>>()?;
        let topology = link.topology(&streams[0]);
        Ok(Transfer {
            link,
            direction,
            streams,
            shares,
            message_bytes,
            seeds,
            patterns,
            buffers,
            topology,
        })
    }

    /// One iteration over every stream at once: the seconds from the start to the last
    /// stream's end, and each stream's checksum when asked for.
    fn run_once(&mut self, checksum: bool) -> Result<(f64, Vec<u64>), KernelError> {
        let n = self.streams.len();
        let barrier = Barrier::new(n + 1);
        let (direction, message_bytes) = (self.direction, self.message_bytes);
        let mut buffers: Vec<Option<&mut Vec<u8>>> = match direction {
            LinkDirection::FromPeer => self.buffers.iter_mut().map(Some).collect(),
            LinkDirection::ToPeer => (0..n).map(|_| None).collect(),
        };
        let mut start = None;
        let results: Vec<io::Result<(Instant, u64)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .streams
                .iter_mut()
                .zip(&self.shares)
                .zip(&self.seeds)
                .zip(&self.patterns)
                .zip(buffers.iter_mut())
                .map(|((((stream, &share), &seed), pattern), buffer)| {
                    let barrier = &barrier;
                    let buffer = buffer.take();
                    scope.spawn(move || -> io::Result<(Instant, u64)> {
                        barrier.wait();
                        let op = match direction {
                            LinkDirection::ToPeer => Op::Sink,
                            LinkDirection::FromPeer => Op::Source,
                        };
                        let request = Request {
                            op,
                            checksum,
                            bytes: share,
                            message_bytes,
                            seed,
                        };
                        stream.write_all(&request.encode())?;
                        let sum = match buffer {
                            None => {
                                protocol::send_pattern(stream, pattern, share, message_bytes)?;
                                let mut reply = [0u8; 8];
                                stream.read_exact(&mut reply)?;
                                u64::from_le_bytes(reply)
                            }
                            Some(buffer) => {
                                let mut sum = Checksum::new();
                                let target = checksum.then_some(&mut sum);
                                protocol::receive(stream, buffer, share, target)?;
                                if checksum { sum.finish() } else { 0 }
                            }
                        };
                        Ok((Instant::now(), sum))
                    })
                })
                .collect();
            // Taken before the streams are released: the time of releasing them counts, so a
            // sample can only overstate the transfer, never flatter it.
            start = Some(Instant::now());
            barrier.wait();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(io::Error::other("stream thread panicked")))
                })
                .collect()
        });
        let start = start.expect("set once every stream was ready");
        let mut end = start;
        let mut sums = Vec::with_capacity(n);
        for result in results {
            let (finished, sum) = result.map_err(|e| self.link.failed("transferring", e))?;
            end = end.max(finished);
            sums.push(sum);
        }
        Ok(((end - start).as_secs_f64(), sums))
    }
}

impl PreparedKernel for Transfer {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        (0..iterations)
            .map(|_| self.run_once(false).map(|(t, _)| t))
            .collect()
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        let (_, sums) = self.run_once(true)?;
        let mut wrong = 0usize;
        for ((sum, pattern), share) in sums.iter().zip(&self.patterns).zip(&self.shares) {
            if *sum != protocol::expected_checksum(pattern, *share) {
                wrong += 1;
            }
        }
        let receiver = match self.direction {
            LinkDirection::ToPeer => "the peer",
            LinkDirection::FromPeer => "this machine",
        };
        Ok(exact_check(
            wrong,
            format!(
                "{} stream(s): checksum of every byte received by {receiver} vs the sent \
                 pattern ({wrong} wrong)",
                self.streams.len()
            ),
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("peer".into(), self.link.peer.clone()),
            (
                "timing".into(),
                "wall clock from all streams starting to the last byte delivered (to the \
                 peer: its acknowledgement of the last byte)"
                    .into(),
            ),
            ("stream_bytes".into(), format!("{:?}", self.shares)),
        ])
    }

    fn topology(&self) -> Option<Topology> {
        Some(self.topology.clone())
    }
}

/// One message to the peer and back, repeated on an open connection.
struct RoundTrip {
    link: Connection,
    stream: TcpStream,
    message: Vec<u8>,
    echo: Vec<u8>,
    topology: Topology,
}

impl RoundTrip {
    fn prepare(link: Connection, message_bytes: u64, seed: u64) -> Result<RoundTrip, KernelError> {
        if message_bytes == 0 || message_bytes > protocol::MAX_MESSAGE_BYTES {
            return Err(KernelError::Unsupported(format!(
                "round trips of {message_bytes}-byte messages: need 1 … {} bytes",
                protocol::MAX_MESSAGE_BYTES
            )));
        }
        let stream = link.open()?;
        let topology = link.topology(&stream);
        Ok(RoundTrip {
            link,
            stream,
            message: protocol::pattern(seed, message_bytes),
            echo: vec![0u8; message_bytes as usize],
            topology,
        })
    }

    fn round_trips(&mut self, count: u32) -> Result<Vec<f64>, KernelError> {
        let request = Request {
            op: Op::Echo,
            checksum: false,
            bytes: u64::from(count),
            message_bytes: self.message.len() as u64,
            seed: 0,
        };
        let mut times = Vec::with_capacity(count as usize);
        let mut run = || -> io::Result<()> {
            self.stream.write_all(&request.encode())?;
            for _ in 0..count {
                let start = Instant::now();
                self.stream.write_all(&self.message)?;
                self.stream.read_exact(&mut self.echo)?;
                times.push(start.elapsed().as_secs_f64());
            }
            Ok(())
        };
        run().map_err(|e| self.link.failed("echoing", e))?;
        Ok(times)
    }
}

impl PreparedKernel for RoundTrip {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        self.round_trips(iterations)
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        self.echo.fill(0);
        self.round_trips(1)?;
        let wrong = self
            .echo
            .iter()
            .zip(&self.message)
            .filter(|(a, b)| a != b)
            .count();
        Ok(exact_check(
            wrong,
            format!(
                "echoed message compared byte for byte ({wrong} of {} differ)",
                self.message.len()
            ),
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("peer".into(), self.link.peer.clone()),
            (
                "timing".into(),
                "wall clock of each message's write and its echo's read".into(),
            ),
        ])
    }

    fn topology(&self) -> Option<Topology> {
        Some(self.topology.clone())
    }
}
