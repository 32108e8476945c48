//! Peer-to-peer copy from one GPU's memory to another's with `cuMemcpyPeerAsync` on the
//! source GPU's stream, peer access enabled both ways (so the copy engines move the bytes
//! over NVLink or PCIe directly, never staged through host memory). The same call PyTorch's
//! cross-device `copy_` makes. One configuration per ordered pair and size, so a run holds
//! the whole matrix; the smallest size is the latency (back-to-back copies of a few bytes,
//! as CUDA's p2pBandwidthLatencyTest measures it).

use crate::device::driver_error;
use crate::host::Rng;
use crate::peers::{PatternElem, PeerBuffer, Peers};
use cudarc::driver::sys;
use silirep_core::harness::compare_outputs;
use silirep_core::schema::{Topology, Verification};
use silirep_core::{KernelError, PreparedKernel};
use std::collections::BTreeMap;

pub struct PeerCopy<'a> {
    peers: &'a Peers,
    src: u32,
    dst: u32,
    bytes: usize,
    src_buf: PeerBuffer,
    dst_buf: PeerBuffer,
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
            group: 1,
        };
        kernel.group = peers.group_for(&[src], || kernel.run_once())?;
        Ok(kernel)
    }

    fn run_once(&self) -> Result<(), KernelError> {
        let (s, d) = (self.peers.device(self.src)?, self.peers.device(self.dst)?);
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
        let mut d = BTreeMap::from([(
            "method".into(),
            "cuMemcpyPeerAsync on the source GPU's stream, peer access enabled both ways".into(),
        )]);
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
