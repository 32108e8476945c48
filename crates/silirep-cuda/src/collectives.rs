//! NCCL collectives over several GPUs driven by one process: one communicator per GPU from
//! `ncclCommInitAll`, every rank's call issued inside one `ncclGroupStart`/`ncclGroupEnd`,
//! each on its GPU's own stream — the way nccl-tests runs `-g <n>`. All-to-all is grouped
//! send/recv pairs and send/recv a ring, exactly as nccl-tests' `alltoall.cu` and
//! `sendrecv.cu` do. Buffers are out of place; sizes follow nccl-tests (see
//! [`CollectiveOp::buffer_elements`]).
//!
//! Verification before timing: every rank's input is the known pattern of
//! `kernels/interconnect.cu` (small positive integers, so sums are exact in f32 and bf16),
//! outputs are poisoned, one collective runs, and sampled outputs of every rank must equal
//! [`expected_output`] exactly.

use crate::host::Rng;
use crate::nccl::Nccl;
use crate::peers::{PatternElem, PeerBuffer, Peers};
use cudarc::nccl::sys::{cudaStream_t, ncclComm_t, ncclDataType_t, ncclRedOp_t};
use silirep_core::harness::compare_outputs;
use silirep_core::schema::{Topology, Verification};
use silirep_core::{CollectiveOp, Dtype, KernelError, PreparedKernel};
use std::collections::BTreeMap;
use std::ffi::{c_int, c_void};

/// One sample spans at least this much of back-to-back collectives. A sample is the slowest
/// GPU's time (events on different GPUs cannot be compared), and between back-to-back
/// collectives one GPU can finish a few microseconds before the other: taking the larger of
/// the two per collective would add that skew to every one. Over a 20 ms span it is added
/// once per span — the way nccl-tests divides one wall-clock span of many collectives.
const COLLECTIVE_SAMPLE_S: f64 = 20e-3;

/// Element `index` of rank `rank`'s input (interconnect.cu's fill_pattern_*).
pub fn pattern_value(rank: u64, index: u64) -> f64 {
    (1 + (index + 3 * rank) % 13) as f64
}

/// What element `index` of rank `rank`'s output must hold after `op` over `ranks` ranks, for
/// a message of `total` elements (nccl-tests' S over the element size).
pub fn expected_output(op: CollectiveOp, ranks: u64, rank: u64, index: u64, total: u64) -> f64 {
    let slice = total / ranks.max(1);
    let sum = |i: u64| (0..ranks).map(|k| pattern_value(k, i)).sum::<f64>();
    match op {
        CollectiveOp::AllReduce => sum(index),
        CollectiveOp::AllGather => pattern_value(index / slice, index % slice),
        CollectiveOp::ReduceScatter => sum(rank * slice + index),
        // Rank p's slice `rank` lands in slice p here.
        CollectiveOp::AllToAll => pattern_value(index / slice, rank * slice + index % slice),
        CollectiveOp::Broadcast => pattern_value(0, index),
        CollectiveOp::SendRecv => pattern_value((rank + ranks - 1) % ranks, index),
    }
}

/// Communicators for one set of GPUs, destroyed with it.
pub struct Communicators {
    pub devices: Vec<u32>,
    pub comms: Vec<ncclComm_t>,
}

impl Communicators {
    /// Destroys every communicator; called once, when they are replaced or the backend
    /// closes, after the last collective's buffers were freed (freeing synchronises).
    pub fn destroy(&self, nccl: &Nccl) {
        for comm in &self.comms {
            // SAFETY: created by `nccl.init_all`, destroyed only here, once per set.
            unsafe { nccl.destroy(*comm) };
        }
    }
}

pub struct Collective<'a> {
    peers: &'a Peers,
    nccl: &'a Nccl,
    comms: &'a Communicators,
    op: CollectiveOp,
    elem: PatternElem,
    total: u64,
    send_count: u64,
    recv_count: u64,
    send: Vec<PeerBuffer>,
    recv: Vec<PeerBuffer>,
    group: u32,
}

impl<'a> Collective<'a> {
    pub fn prepare(
        peers: &'a Peers,
        nccl: &'a Nccl,
        comms: &'a Communicators,
        op: CollectiveOp,
        bytes: u64,
        dtype: Dtype,
    ) -> Result<Collective<'a>, KernelError> {
        let elem = match dtype {
            Dtype::F32 => PatternElem::F32,
            Dtype::Bf16 => PatternElem::Bf16,
            other => {
                return Err(KernelError::Unsupported(format!(
                    "collectives run in f32 or bf16; got {other}"
                )));
            }
        };
        let ranks = comms.devices.len() as u64;
        let size = elem.size_bytes() as u64;
        if ranks < 2 {
            return Err(KernelError::Unsupported(
                "a collective needs at least two GPUs (--gpus)".into(),
            ));
        }
        if !bytes.is_multiple_of(size) {
            return Err(KernelError::Unsupported(format!(
                "{bytes} bytes is not a whole number of {dtype} elements"
            )));
        }
        let total = bytes / size;
        let (send_count, recv_count) = op.buffer_elements(total, ranks).ok_or_else(|| {
            KernelError::Unsupported(format!(
                "{} of {bytes} bytes does not split evenly over {ranks} GPUs",
                op.name()
            ))
        })?;
        let mut send = Vec::new();
        let mut recv = Vec::new();
        for (rank, ordinal) in comms.devices.iter().enumerate() {
            let device = peers.device(*ordinal)?;
            let s = device.alloc(send_count as usize * size as usize, "collective input")?;
            let r = device.alloc(recv_count as usize * size as usize, "collective output")?;
            device.fill_pattern(s.ptr, send_count as usize, elem, rank as u64)?;
            send.push(s);
            recv.push(r);
        }
        let mut kernel = Collective {
            peers,
            nccl,
            comms,
            op,
            elem,
            total,
            send_count,
            recv_count,
            send,
            recv,
            group: 1,
        };
        // The first collective on a communicator sets up its connections: not timed here.
        kernel.run_once()?;
        kernel.group =
            peers.group_for(&comms.devices, COLLECTIVE_SAMPLE_S, || kernel.run_once())?;
        Ok(kernel)
    }

    fn run_once(&self) -> Result<(), KernelError> {
        let nccl = self.nccl;
        let dt = match self.elem {
            PatternElem::F32 => ncclDataType_t::ncclFloat32,
            PatternElem::Bf16 => ncclDataType_t::ncclBfloat16,
        };
        let ranks = self.comms.devices.len();
        let size = self.elem.size_bytes() as u64;
        let op = self.op;
        nccl.group(|| {
            for (rank, ordinal) in self.comms.devices.iter().enumerate() {
                let device = self.peers.device(*ordinal).map_err(|e| e.to_string())?;
                let stream = device.stream.cu_stream() as cudaStream_t;
                let comm = self.comms.comms[rank];
                let send = self.send[rank].ptr;
                let recv = self.recv[rank].ptr;
                let sp = send as *const c_void;
                let rp = recv as *mut c_void;
                // SAFETY: buffers hold send_count / recv_count elements of `dt` on this rank's
                // GPU; `comm` is this rank's communicator and `stream` its GPU's stream.
                unsafe {
                    match op {
                        CollectiveOp::AllReduce => nccl.check(
                            "ncclAllReduce",
                            (nccl.all_reduce)(
                                sp,
                                rp,
                                self.send_count as usize,
                                dt,
                                ncclRedOp_t::ncclSum,
                                comm,
                                stream,
                            ),
                        )?,
                        CollectiveOp::AllGather => nccl.check(
                            "ncclAllGather",
                            (nccl.all_gather)(sp, rp, self.send_count as usize, dt, comm, stream),
                        )?,
                        CollectiveOp::ReduceScatter => nccl.check(
                            "ncclReduceScatter",
                            (nccl.reduce_scatter)(
                                sp,
                                rp,
                                self.recv_count as usize,
                                dt,
                                ncclRedOp_t::ncclSum,
                                comm,
                                stream,
                            ),
                        )?,
                        CollectiveOp::AllToAll => {
                            let slice = self.send_count / ranks as u64;
                            // The one-call form where the library has it (as nccl-tests
                            // uses it), grouped pairs otherwise.
                            if let Some(all_to_all) = nccl.all_to_all {
                                nccl.check(
                                    "ncclAlltoAll",
                                    all_to_all(sp, rp, slice as usize, dt, comm, stream),
                                )?;
                            } else {
                                for peer in 0..ranks {
                                    let offset = peer as u64 * slice * size;
                                    nccl.check(
                                        "ncclSend",
                                        (nccl.send)(
                                            (send + offset) as *const c_void,
                                            slice as usize,
                                            dt,
                                            peer as c_int,
                                            comm,
                                            stream,
                                        ),
                                    )?;
                                    nccl.check(
                                        "ncclRecv",
                                        (nccl.recv)(
                                            (recv + offset) as *mut c_void,
                                            slice as usize,
                                            dt,
                                            peer as c_int,
                                            comm,
                                            stream,
                                        ),
                                    )?;
                                }
                            }
                        }
                        CollectiveOp::Broadcast => nccl.check(
                            "ncclBroadcast",
                            (nccl.broadcast)(sp, rp, self.send_count as usize, dt, 0, comm, stream),
                        )?,
                        CollectiveOp::SendRecv => {
                            let next = (rank + 1) % ranks;
                            let previous = (rank + ranks - 1) % ranks;
                            nccl.check(
                                "ncclSend",
                                (nccl.send)(
                                    sp,
                                    self.send_count as usize,
                                    dt,
                                    next as c_int,
                                    comm,
                                    stream,
                                ),
                            )?;
                            nccl.check(
                                "ncclRecv",
                                (nccl.recv)(
                                    rp,
                                    self.recv_count as usize,
                                    dt,
                                    previous as c_int,
                                    comm,
                                    stream,
                                ),
                            )?;
                        }
                    }
                }
            }
            Ok(())
        })
        .map_err(KernelError::Backend)
    }
}

impl PreparedKernel for Collective<'_> {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        let this = &*self;
        this.peers
            .time(&this.comms.devices, iterations, this.group, || {
                this.run_once()
            })
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        let size = self.elem.size_bytes();
        // 0xFF bytes: NaN in f32 and bf16, which no expected value equals.
        for (rank, ordinal) in self.comms.devices.iter().enumerate() {
            let device = self.peers.device(*ordinal)?;
            device.poison(self.recv[rank].ptr, self.recv[rank].bytes, 0xff)?;
            device.synchronize()?;
        }
        self.run_once()?;
        let ranks = self.comms.devices.len() as u64;
        let count = self.recv_count as usize;
        let mut rng = Rng::new(0xc011);
        // The first and last 64 outputs (slice edges are where indexing goes wrong) and 128
        // drawn at random, on every rank.
        let mut picks: Vec<usize> = (0..count.min(64)).collect();
        picks.extend(count.saturating_sub(64)..count);
        picks.extend(rng.distinct(count, 128.min(count)));
        picks.sort_unstable();
        picks.dedup();
        let (mut actual, mut expected) = (Vec::new(), Vec::new());
        for (rank, ordinal) in self.comms.devices.iter().enumerate() {
            let device = self.peers.device(*ordinal)?;
            for &i in &picks {
                let raw = device.download(self.recv[rank].ptr, i * size, size)?;
                actual.push(self.elem.decode(&raw)[0]);
                expected.push(expected_output(
                    self.op,
                    ranks,
                    rank as u64,
                    i as u64,
                    self.total,
                ));
            }
        }
        Ok(compare_outputs(
            &actual,
            &expected,
            0.0,
            &format!(
                "{} sampled outputs on each of {ranks} GPUs equal the exact result for known integer inputs",
                picks.len()
            ),
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        let ranks = self.comms.devices.len() as u64;
        let mut d = BTreeMap::from([
            (
                "library".into(),
                format!("NCCL {} ({})", self.nccl.version, self.nccl.path),
            ),
            (
                "launch".into(),
                format!(
                    "one process, ncclCommInitAll over {ranks} GPUs, every rank's call in one ncclGroupStart/End, one non-blocking stream per GPU; out of place{}",
                    match self.op {
                        CollectiveOp::AllToAll if self.nccl.all_to_all.is_some() =>
                            "; ncclAlltoAll",
                        CollectiveOp::AllToAll =>
                            "; all-to-all as grouped ncclSend/ncclRecv (this NCCL has no ncclAlltoAll)",
                        CollectiveOp::SendRecv => "; ring: rank r sends to r+1",
                        CollectiveOp::Broadcast => "; root 0",
                        _ => "",
                    }
                ),
            ),
            (
                "bus_bandwidth_factor".into(),
                format!("{}", self.op.bus_bandwidth_factor(ranks)),
            ),
            (
                "timing".into(),
                format!(
                    "CUDA events on every GPU's stream; a sample is the slowest GPU's time{}",
                    if self.group > 1 {
                        format!(
                            " for {} back-to-back collectives, divided by {}",
                            self.group, self.group
                        )
                    } else {
                        String::new()
                    }
                ),
            ),
        ]);
        if let Ok(value) = std::env::var("NCCL_NVLS_ENABLE") {
            d.insert("env NCCL_NVLS_ENABLE".into(), value);
        }
        d
    }

    fn topology(&self) -> Option<Topology> {
        Some(self.peers.topology(&self.comms.devices, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs of 4 ranks over S = 8 elements, written out by hand.
    fn input(rank: u64, count: u64) -> Vec<f64> {
        (0..count).map(|i| pattern_value(rank, i)).collect()
    }

    #[test]
    fn pattern_is_small_positive_integers() {
        assert_eq!(input(0, 4), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(input(1, 2), vec![4.0, 5.0]);
        assert_eq!(pattern_value(0, 12), 13.0);
        assert_eq!(pattern_value(0, 13), 1.0);
        // Sums over 8 ranks stay ≤ 104: exact in bf16's 8 significant bits (< 256).
        let worst = (0..8).map(|r| pattern_value(r, 10)).sum::<f64>();
        assert!(worst <= 104.0);
    }

    #[test]
    fn all_reduce_and_reduce_scatter_sum_every_rank() {
        let (n, total) = (4, 8);
        let sums: Vec<f64> = (0..total)
            .map(|i| (0..n).map(|r| input(r, total)[i as usize]).sum())
            .collect();
        for rank in 0..n {
            for i in 0..total {
                assert_eq!(
                    expected_output(CollectiveOp::AllReduce, n, rank, i, total),
                    sums[i as usize]
                );
            }
            // Rank r keeps slice r (2 elements) of the sum.
            for i in 0..total / n {
                assert_eq!(
                    expected_output(CollectiveOp::ReduceScatter, n, rank, i, total),
                    sums[(rank * 2 + i) as usize]
                );
            }
        }
    }

    #[test]
    fn all_gather_concatenates_and_all_to_all_transposes() {
        let (n, total) = (4, 8);
        // All-gather: each rank sends 2 elements; output is rank 0's, rank 1's, ...
        let gathered: Vec<f64> = (0..n).flat_map(|r| input(r, 2)).collect();
        for rank in 0..n {
            for i in 0..total {
                assert_eq!(
                    expected_output(CollectiveOp::AllGather, n, rank, i, total),
                    gathered[i as usize]
                );
            }
        }
        // All-to-all: rank 1's output slice p is rank p's slice 1 (elements 2, 3).
        let expected: Vec<f64> = (0..n).flat_map(|p| input(p, 4)[2..4].to_vec()).collect();
        for i in 0..total {
            assert_eq!(
                expected_output(CollectiveOp::AllToAll, n, 1, i, total),
                expected[i as usize]
            );
        }
    }

    #[test]
    fn broadcast_copies_root_and_send_recv_shifts_the_ring() {
        let (n, total) = (3, 6);
        for rank in 0..n {
            for i in 0..total {
                assert_eq!(
                    expected_output(CollectiveOp::Broadcast, n, rank, i, total),
                    pattern_value(0, i)
                );
            }
        }
        assert_eq!(
            expected_output(CollectiveOp::SendRecv, n, 0, 5, total),
            pattern_value(2, 5)
        );
        assert_eq!(
            expected_output(CollectiveOp::SendRecv, n, 2, 0, total),
            pattern_value(1, 0)
        );
    }

    /// A rank whose output was never written (poisoned NaN) or summed twice fails.
    #[test]
    fn a_wrong_output_fails_verification() {
        let expected = [expected_output(CollectiveOp::AllReduce, 2, 0, 0, 4)];
        let doubled = [2.0 * expected[0]];
        let v = compare_outputs(&doubled, &expected, 0.0, "t");
        assert_eq!(v.status, silirep_core::schema::VerificationStatus::Failed);
        let v = compare_outputs(&[f64::NAN], &expected, 0.0, "t");
        assert_eq!(v.status, silirep_core::schema::VerificationStatus::Failed);
    }
}
