//! `--peer HOST:PORT`: the run's backend plus the network link to another machine. The
//! device backend measures its kernels as before; the link kernels (`silirep-link`) join the
//! suite and are prepared by the link client, so they go through the same harness — warm-up,
//! verification, stopping rule, samples — and into the same result file.

use silirep_core::schema::{Accelerator, BackendInfo};
use silirep_core::{Backend, KernelError, KernelSpec, PreparedKernel, Suite};
use silirep_link::LinkClient;

pub struct WithPeer {
    inner: Box<dyn Backend>,
    link: LinkClient,
}

impl WithPeer {
    pub fn new(inner: Box<dyn Backend>, link: LinkClient) -> WithPeer {
        WithPeer { inner, link }
    }
}

fn is_network(spec: &KernelSpec) -> bool {
    matches!(
        spec,
        KernelSpec::NetworkTransfer { .. } | KernelSpec::NetworkRoundTrip { .. }
    )
}

impl Backend for WithPeer {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn info(&self) -> BackendInfo {
        let mut info = self.inner.info();
        info.libraries
            .insert("link peer".into(), self.link.peer().to_string());
        info
    }

    fn accelerator(&self) -> Option<Accelerator> {
        self.inner.accelerator()
    }

    fn last_level_cache_bytes(&self) -> Option<u64> {
        self.inner.last_level_cache_bytes()
    }

    fn memory_bytes(&self) -> Option<u64> {
        self.inner.memory_bytes()
    }

    fn suite(&self, suite: Suite) -> Vec<KernelSpec> {
        let mut specs = self.inner.suite(suite);
        specs.extend(silirep_link::suite::configurations(suite));
        specs
    }

    fn prepare<'a>(
        &'a mut self,
        spec: &KernelSpec,
        seed: u64,
    ) -> Result<Box<dyn PreparedKernel + 'a>, KernelError> {
        if is_network(spec) {
            self.link.prepare(spec, seed)
        } else {
            self.inner.prepare(spec, seed)
        }
    }
}
