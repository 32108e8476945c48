//! Facts about Apple GPUs that Metal does not expose: the GPU core count (from the IORegistry,
//! read through the `ioreg` tool because IOKit is a C API with no pure-Rust binding) and the
//! size of the system-level cache (not published at all).

/// The last-level cache in front of DRAM on Apple Silicon is the system-level cache (SLC),
/// shared by CPU and GPU. Apple publishes no sizes; die-shot analyses put M1 at 8 MB, M1 Pro
/// at 24 MB, M1 Max at 48 MB and M1 Ultra (two Max dies) at 96 MB, with later generations in
/// the same range. We use upper bounds, rounded up with headroom, because the value only
/// sizes bandwidth buffers (≥ 4× this) and overestimating it merely makes those buffers
/// larger, while underestimating it would let the cache serve a "DRAM" measurement.
pub(crate) fn system_level_cache_bytes(gpu_name: &str) -> u64 {
    const MIB: u64 = 1 << 20;
    match chip_tier(gpu_name) {
        ChipTier::Base => 16 * MIB,
        ChipTier::Pro => 32 * MIB,
        ChipTier::Max => 64 * MIB,
        // Ultra is two Max dies; an unknown chip gets the largest bound we use.
        ChipTier::Ultra | ChipTier::Unknown => 128 * MIB,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChipTier {
    Base,
    Pro,
    Max,
    Ultra,
    Unknown,
}

/// The tier from a Metal device name such as `Apple M2 Max`.
pub(crate) fn chip_tier(gpu_name: &str) -> ChipTier {
    let words: Vec<&str> = gpu_name.split_whitespace().collect();
    let is_m_series = words
        .iter()
        .any(|w| w.len() >= 2 && w.starts_with('M') && w[1..].chars().all(|c| c.is_ascii_digit()));
    if !is_m_series {
        return ChipTier::Unknown;
    }
    match words.last().copied() {
        Some("Ultra") => ChipTier::Ultra,
        Some("Max") => ChipTier::Max,
        Some("Pro") => ChipTier::Pro,
        Some(last) if last.starts_with('M') => ChipTier::Base,
        _ => ChipTier::Unknown,
    }
}

/// `"gpu-core-count" = 38` from `ioreg -rc AGXAccelerator -d1` output.
pub(crate) fn parse_gpu_core_count(ioreg_output: &str) -> Option<u32> {
    ioreg_output.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if key
            .trim()
            .trim_matches(|c| c == '|' || c == ' ')
            .trim_matches('"')
            == "gpu-core-count"
        {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

/// `Total Number of Cores: 38` from `system_profiler SPDisplaysDataType` output, the
/// fallback when `ioreg` is unavailable.
pub(crate) fn parse_system_profiler_cores(output: &str) -> Option<u32> {
    output.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "Total Number of Cores").then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chip_tiers_from_device_names() {
        assert_eq!(chip_tier("Apple M1"), ChipTier::Base);
        assert_eq!(chip_tier("Apple M3 Pro"), ChipTier::Pro);
        assert_eq!(chip_tier("Apple M2 Max"), ChipTier::Max);
        assert_eq!(chip_tier("Apple M1 Ultra"), ChipTier::Ultra);
        assert_eq!(chip_tier("AMD Radeon Pro 5500M"), ChipTier::Unknown);
        assert_eq!(chip_tier("Apple Paravirtual device"), ChipTier::Unknown);
    }

    #[test]
    fn cache_bounds_cover_published_estimates() {
        const MB: u64 = 1_000_000;
        for (name, estimate) in [
            ("Apple M1", 8 * MB),
            ("Apple M1 Pro", 24 * MB),
            ("Apple M1 Max", 48 * MB),
            ("Apple M1 Ultra", 96 * MB),
        ] {
            assert!(system_level_cache_bytes(name) >= estimate, "{name}");
        }
        assert_eq!(system_level_cache_bytes("something else"), 128 << 20);
    }

    #[test]
    fn core_count_from_ioreg() {
        let output = r#"+-o AGXAcceleratorG14X  <class AGXAcceleratorG14X, id 0x1000003c4>
    {
      "IOClass" = "AGXAcceleratorG14X"
      "gpu-core-count" = 38
      "model" = "Apple M2 Max"
    }"#;
        assert_eq!(parse_gpu_core_count(output), Some(38));
        assert_eq!(parse_gpu_core_count("\"model\" = \"x\""), None);
    }

    #[test]
    fn core_count_from_system_profiler() {
        let output = "Graphics/Displays:\n\n    Apple M1:\n\n      Chipset Model: Apple M1\n      Type: GPU\n      Total Number of Cores: 8\n";
        assert_eq!(parse_system_profiler_cores(output), Some(8));
        assert_eq!(parse_system_profiler_cores("Type: GPU"), None);
    }
}
