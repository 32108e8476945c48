//! Peer-to-peer copy from one GPU's memory to another's, peer access enabled both ways (so
//! the bytes cross NVLink or PCIe directly, never staged through host memory), by whichever
//! of two methods is faster for the configuration, tried on the spot like a GEMM algorithm:
//! the copy engines (`cuMemcpyPeerAsync` on the source GPU's stream, the call PyTorch's
//! cross-device `copy_` makes) or the source GPU's SMs writing into the peer-mapped
//! destination (interconnect.cu's `peer_copy_push`). The details say which ran and what each
//! took in the trial. One configuration per ordered pair and size, so a run holds the whole
//! matrix; the smallest size is the latency (back-to-back copies of a few bytes, as CUDA's
//! p2pBandwidthLatencyTest measures it).

use crate::device::driver_error;
use crate::host::Rng;
use crate::peers::{PatternElem, PeerBuffer, Peers};
use cudarc::driver::sys;
use silirep_core::harness::compare_outputs;
use silirep_core::schema::{Topology, Verification};
use silirep_core::{KernelError, PreparedKernel};
use std::collections::BTreeMap;

/// How the bytes are moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    CopyEngine,
    /// The source GPU's SMs, this many blocks of 256 threads per SM.
    Sms(u32),
}

impl Method {
    fn describe(self) -> String {
        match self {
            Method::CopyEngine => {
                "cuMemcpyPeerAsync (copy engines) on the source GPU's stream".into()
            }
            Method::Sms(blocks) => format!(
                "copy kernel on the source GPU's SMs ({blocks} blocks of 256 threads per SM, 16-byte accesses) writing the peer-mapped destination"
            ),
        }
    }
}

pub struct PeerCopy<'a> {
    peers: &'a Peers,
    src: u32,
    dst: u32,
    bytes: usize,
    src_buf: PeerBuffer,
    dst_buf: PeerBuffer,
    method: Method,
    /// Median seconds per copy of each method in the trial that chose `method`.
    trial: Vec<(Method, f64)>,
    group: u32,
}

impl<'a> PeerCopy<'a> {
    pub fn prepare(
        peers: &'a Peers,
        src: u32,
        dst: u32,
        bytes: u64,
        seed: u64,
    ) -> Result<PeerCopy<'a>, KernelError> {
        if src == dst {
            return Err(KernelError::Unsupported(format!(
                "a peer copy needs two different GPUs; got {src} → {dst}"
            )));
        }
        if bytes == 0 || !bytes.is_multiple_of(4) {
            return Err(KernelError::Unsupported(format!(
                "{bytes} bytes: peer copies are whole 4-byte words"
            )));
        }
        peers.enable_peer_access(src, dst)?;
        peers.enable_peer_access(dst, src)?;
        let (s, d) = (peers.device(src)?, peers.device(dst)?);
        let bytes = bytes as usize;
        let src_buf = s.alloc(bytes, "peer copy source")?;
        let dst_buf = d.alloc(bytes, "peer copy destination")?;
        s.fill_pattern(src_buf.ptr, bytes / 4, PatternElem::F32, seed % 1024)?;
        s.synchronize()?;
        let mut kernel = PeerCopy {
            peers,
            src,
            dst,
            bytes,
            src_buf,
            dst_buf,
            method: Method::CopyEngine,
            trial: Vec::new(),
            group: 1,
        };
        // The trial: each method's group sized alone, then the median of 5 samples each.
        for method in [Method::CopyEngine, Method::Sms(2), Method::Sms(4)] {
            kernel.method = method;
            let group =
                peers.group_for(&[src], crate::peers::SHORT_SAMPLE_S, || kernel.run_once())?;
            let mut times = peers.time(&[src], 5, group, || kernel.run_once())?;
            times.sort_by(f64::total_cmp);
            kernel.trial.push((method, times[times.len() / 2]));
        }
        kernel.method = kernel
            .trial
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(m, _)| *m)
            .unwrap_or(Method::CopyEngine);
        kernel.group =
            peers.group_for(&[src], crate::peers::SHORT_SAMPLE_S, || kernel.run_once())?;
        Ok(kernel)
    }

    fn run_once(&self) -> Result<(), KernelError> {
        let (s, d) = (self.peers.device(self.src)?, self.peers.device(self.dst)?);
        match self.method {
            Method::CopyEngine => {
                s.ctx.bind_to_thread().map_err(driver_error)?;
                // SAFETY: both buffers hold `bytes` bytes in their own GPU's context.
                unsafe {
                    sys::cuMemcpyPeerAsync(
                        self.dst_buf.ptr,
                        d.ctx.cu_ctx(),
                        self.src_buf.ptr,
                        s.ctx.cu_ctx(),
                        self.bytes,
                        s.stream.cu_stream(),
                    )
                }
                .result()
                .map_err(driver_error)
            }
            Method::Sms(blocks) => {
                s.copy_with_sms(self.src_buf.ptr, self.dst_buf.ptr, self.bytes, blocks)
            }
        }
    }
}

impl PreparedKernel for PeerCopy<'_> {
    fn time(&mut self, iterations: u32) -> Result<Vec<f64>, KernelError> {
        let this = &*self;
        this.peers
            .time(&[this.src], iterations, this.group, || this.run_once())
    }

    fn verify(&mut self) -> Result<Verification, KernelError> {
        let (s, d) = (self.peers.device(self.src)?, self.peers.device(self.dst)?);
        d.poison(self.dst_buf.ptr, self.bytes, 0xff)?;
        d.synchronize()?;
        self.run_once()?;
        s.synchronize()?;
        // The first and last 256 bytes and 64 words drawn at random.
        let words = self.bytes / 4;
        let mut picks: Vec<usize> = (0..words.min(64)).collect();
        picks.extend(words.saturating_sub(64)..words);
        picks.extend(Rng::new(0x9e2).distinct(words, 64.min(words)));
        picks.sort_unstable();
        picks.dedup();
        let (mut actual, mut expected) = (Vec::new(), Vec::new());
        for &w in &picks {
            actual.extend(PatternElem::F32.decode(&d.download(self.dst_buf.ptr, w * 4, 4)?));
            expected.extend(PatternElem::F32.decode(&s.download(self.src_buf.ptr, w * 4, 4)?));
        }
        Ok(compare_outputs(
            &actual,
            &expected,
            0.0,
            &format!(
                "{} sampled 4-byte words of the destination equal the source",
                picks.len()
            ),
        ))
    }

    fn details(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::from([
            (
                "method".into(),
                format!("{}; peer access enabled both ways", self.method.describe()),
            ),
            (
                "method_trial".into(),
                self.trial
                    .iter()
                    .map(|(m, t)| {
                        format!(
                            "{}: {:.3} µs",
                            match m {
                                Method::CopyEngine => "copy engines".to_string(),
                                Method::Sms(b) => format!("SMs ×{b}/SM"),
                            },
                            t * 1e6
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ]);
        if self.group > 1 {
            d.insert(
                "timing".into(),
                format!(
                    "each sample is {} back-to-back copies timed by one CUDA event pair on the source GPU, divided by {}",
                    self.group, self.group
                ),
            );
        }
        d
    }

    fn topology(&self) -> Option<Topology> {
        Some(self.peers.topology(&[self.src, self.dst], false))
    }
}
