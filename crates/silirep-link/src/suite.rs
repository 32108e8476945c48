//! Which network configurations each suite measures: both directions, write sizes from
//! 4 KiB to 1 GiB on one stream, several streams at mid sizes (where one TCP stream is often
//! limited by one core), and round trips from 8 bytes to 1 MiB.

use silirep_core::{KernelSpec, LinkDirection, NetworkProtocol, Suite, network_transfer_bytes};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

pub fn configurations(suite: Suite) -> Vec<KernelSpec> {
    // Bytes per iteration: enough that a fast link runs tens of milliseconds per sample.
    let (messages, multi, streams, minimum, round_trips): (&[u64], &[u64], &[u32], u64, &[u64]) =
        match suite {
            Suite::Quick => (&[64 * KIB, 16 * MIB], &[], &[], 64 * MIB, &[8, 4 * KIB]),
            Suite::Standard => (
                &[4 * KIB, 64 * KIB, MIB, 16 * MIB, 256 * MIB, GIB],
                &[64 * KIB, 16 * MIB],
                &[4],
                256 * MIB,
                &[8, 4 * KIB, 64 * KIB, MIB],
            ),
            Suite::Full => (
                &[
                    4 * KIB,
                    16 * KIB,
                    64 * KIB,
                    256 * KIB,
                    MIB,
                    4 * MIB,
                    16 * MIB,
                    256 * MIB,
                    GIB,
                ],
                &[64 * KIB, MIB, 16 * MIB],
                &[2, 4, 8],
                GIB,
                &[8, 512, 4 * KIB, 64 * KIB, MIB],
            ),
        };
    let mut specs = Vec::new();
    for direction in [LinkDirection::ToPeer, LinkDirection::FromPeer] {
        for &message_bytes in messages {
            specs.push(KernelSpec::NetworkTransfer {
                protocol: NetworkProtocol::Tcp,
                direction,
                streams: 1,
                message_bytes,
                bytes: network_transfer_bytes(message_bytes, minimum),
                peer: None,
            });
        }
        for &s in streams {
            for &message_bytes in multi {
                specs.push(KernelSpec::NetworkTransfer {
                    protocol: NetworkProtocol::Tcp,
                    direction,
                    streams: s,
                    message_bytes,
                    bytes: network_transfer_bytes(message_bytes, minimum),
                    peer: None,
                });
            }
        }
    }
    for &message_bytes in round_trips {
        specs.push(KernelSpec::NetworkRoundTrip { message_bytes });
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_grow_and_cover_both_directions_and_round_trips() {
        let sizes: Vec<usize> = [Suite::Quick, Suite::Standard, Suite::Full]
            .map(|s| configurations(s).len())
            .to_vec();
        assert!(sizes[0] < sizes[1] && sizes[1] < sizes[2], "{sizes:?}");
        for spec in configurations(Suite::Standard) {
            if let KernelSpec::NetworkTransfer {
                message_bytes,
                bytes,
                ..
            } = spec
            {
                assert!(bytes >= 256 * MIB && bytes % message_bytes == 0, "{spec:?}");
            }
        }
        let names: std::collections::BTreeSet<String> = configurations(Suite::Quick)
            .iter()
            .map(|s| s.name())
            .collect();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["tcp_from_peer", "tcp_round_trip", "tcp_to_peer"]
        );
    }
}
