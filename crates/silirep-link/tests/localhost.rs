//! The link kernels end to end over localhost: against the real server, against a peer that
//! disappears in the middle of a transfer, one that stops answering, and no peer at all.

use silirep_core::schema::VerificationStatus;
use silirep_core::{KernelSpec, LinkDirection, NetworkProtocol};
use silirep_link::{LinkClient, ServeOptions, serve};
use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn transfer(direction: LinkDirection, streams: u32, message_bytes: u64) -> KernelSpec {
    KernelSpec::NetworkTransfer {
        protocol: NetworkProtocol::Tcp,
        direction,
        streams,
        message_bytes,
        bytes: silirep_core::network_transfer_bytes(message_bytes, 8 << 20),
        peer: None,
    }
}

/// A real server on an ephemeral port, stopped when the guard drops.
struct Server {
    address: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            serve(listener, ServeOptions::default(), flag).unwrap();
        });
        Server {
            address,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn every_kernel_verifies_and_times_against_the_real_server() {
    let server = Server::start();
    let mut client = LinkClient::new(&server.address, Duration::from_secs(10)).unwrap();
    for spec in [
        transfer(LinkDirection::ToPeer, 1, 64 << 10),
        transfer(LinkDirection::FromPeer, 1, 1 << 20),
        transfer(LinkDirection::ToPeer, 3, 4 << 10),
        transfer(LinkDirection::FromPeer, 4, 64 << 10),
        KernelSpec::NetworkRoundTrip { message_bytes: 8 },
        KernelSpec::NetworkRoundTrip {
            message_bytes: 64 << 10,
        },
    ] {
        let mut kernel = client.prepare(&spec, 11).unwrap();
        let verification = kernel.verify().unwrap();
        assert_eq!(
            verification.status,
            VerificationStatus::Passed,
            "{spec:?}: {}",
            verification.method
        );
        let times = kernel.time(3).unwrap();
        assert_eq!(times.len(), 3);
        assert!(times.iter().all(|t| *t > 0.0 && t.is_finite()), "{times:?}");
        let topology = kernel.topology().unwrap();
        assert_eq!(topology.links[0].kind, "tcp");
        assert_eq!(topology.links[0].label, "TCP over loopback");
    }
}

#[test]
fn a_peer_that_disappears_mid_transfer_is_a_clear_error_and_is_not_retried() {
    // Accepts one connection, reads part of the first transfer, then drops everything.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let flaky = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut some = vec![0u8; 100_000];
        let _ = stream.read_exact(&mut some);
        drop(stream);
        drop(listener);
    });
    let mut client = LinkClient::new(&address, Duration::from_secs(5)).unwrap();
    let spec = transfer(LinkDirection::ToPeer, 1, 64 << 10);
    let mut kernel = client.prepare(&spec, 1).unwrap();
    let err = kernel.time(5).unwrap_err().to_string();
    assert!(err.contains(&format!("peer {address}")), "{err}");
    drop(kernel);
    flaky.join().unwrap();
    // The next configuration fails at once, naming the first failure.
    let started = std::time::Instant::now();
    let err = client.prepare(&spec, 2).err().unwrap().to_string();
    assert!(
        err.contains("stopped answering earlier in this run"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_silent_peer_times_out_and_no_peer_is_refused() {
    // Accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let silent = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(2));
        drop(stream);
    });
    let mut client = LinkClient::new(&address, Duration::from_millis(300)).unwrap();
    let mut kernel = client
        .prepare(&KernelSpec::NetworkRoundTrip { message_bytes: 8 }, 1)
        .unwrap();
    let err = kernel.verify().unwrap_err().to_string();
    assert!(err.contains("no answer within"), "{err}");
    drop(kernel);
    silent.join().unwrap();

    // Nothing listening: the connection is refused, and the message says where.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = free.local_addr().unwrap().to_string();
    drop(free);
    let mut client = LinkClient::new(&closed, Duration::from_secs(2)).unwrap();
    let err = client
        .prepare(&transfer(LinkDirection::FromPeer, 1, 4096), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&format!("peer {closed}: connecting")), "{err}");
}

#[test]
fn the_server_refuses_what_is_not_a_silirep_request() {
    let server = Server::start();
    let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
    use std::io::Write;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n.............")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.contains("not a silirep link request"), "{answer}");
}
