//! The link between two machines, measured the way iperf3 measures it but inside silirep's
//! harness: `silirep link serve` runs [`server::serve`] on one machine, and `silirep measure
//! --peer HOST:PORT` on the other runs the kernels of [`client`] against it — TCP throughput
//! to and from the peer over one or several streams, and the round-trip time of a message.
//!
//! Every transfer is verified like a GPU kernel is: once, before timing counts, the bytes
//! that crossed are checksummed on the receiving side and compared with what the sender
//! generated ([`protocol`]). Timed iterations carry no checksum, so the link, not the
//! checksum, sets the rate. Sockets have timeouts: a peer that stops answering is a recorded
//! failure naming it, never a hang, and the run keeps every finished measurement.

pub mod client;
pub mod protocol;
pub mod server;
pub mod suite;

pub use client::{LinkClient, PeerError};
pub use server::{ServeOptions, serve};
