//! Small helpers every stage uses: names made safe for files and ids, a stable hash, and the
//! rule that names a machine. They live here rather than in the stage that first needed them,
//! so measuring, reading and rendering agree on one definition.

pub mod machine_id;

/// Lower-case ASCII letters and digits joined by single dashes.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// FNV-1a: tiny, stable across platforms and Rust versions (unlike `DefaultHasher`).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_stable() {
        assert_eq!(slug("Apple M4 Pro Mac16,8"), "apple-m4-pro-mac16-8");
        assert_eq!(slug("  M5 "), "m5");
        assert_eq!(slug("NVIDIA H200"), "nvidia-h200");
    }

    #[test]
    fn fnv_is_the_published_function() {
        // Reference values of FNV-1a 64 (Fowler–Noll–Vo test vectors).
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }
}
