//! Small helpers every stage uses: names made safe for files and ids, a stable hash, the rule
//! that names a machine, "did you mean" suggestions for mistyped names, the one formatter of numbers ([`format`]: the console and the report
//! agree on precision and units) and UTC timestamps ([`time`]). They live here rather than in
//! the stage that first needed them, so measuring, reading and rendering agree on one
//! definition.

pub mod format;
pub mod machine_id;
pub mod time;

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

/// ` (did you mean "gemm"?)` naming the candidates closest to `wrong` (edit distance at most
/// a third of the word, or a prefix), or nothing when none is close.
pub fn did_you_mean<'a>(wrong: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let wrong = wrong.trim().to_ascii_lowercase();
    let scored: Vec<(usize, &str)> = candidates
        .map(|c| (edit_distance(&wrong, c), c))
        .filter(|(d, c)| {
            *d <= (wrong.chars().count() / 3).max(1)
                || (wrong.len() >= 3 && (c.starts_with(&wrong) || wrong.starts_with(*c)))
        })
        .collect();
    let Some(best) = scored.iter().map(|(d, _)| *d).min() else {
        return String::new();
    };
    let mut names: Vec<&str> = scored
        .iter()
        .filter(|(d, _)| *d == best || *d <= 1)
        .map(|(_, c)| *c)
        .collect();
    names.sort_unstable();
    names.dedup();
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    format!(" (did you mean {}?)", quoted.join(" or "))
}

/// Levenshtein distance (insertions, deletions, substitutions), on characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
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
