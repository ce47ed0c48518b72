//! The one place the CPU is asked what it supports. Everything else reads
//! the answer from [`features`], which asks once per process.

use std::sync::OnceLock;

/// The instruction-set extensions semsearch's kernels use, as this CPU
/// reported them. Fields of another architecture are always `false`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    pub avx2: bool,
    pub fma: bool,
    pub avx512f: bool,
    pub avx512bw: bool,
    pub avx512vnni: bool,
    pub neon: bool,
    /// The Armv8.2 dot-product extension (`FEAT_DotProd`, `sdot`).
    pub dotprod: bool,
}

impl Features {
    /// The names of the features present, for the start-up log.
    pub fn names(&self) -> Vec<&'static str> {
        let all = [
            ("avx2", self.avx2),
            ("fma", self.fma),
            ("avx512f", self.avx512f),
            ("avx512bw", self.avx512bw),
            ("avx512vnni", self.avx512vnni),
            ("neon", self.neon),
            ("dotprod", self.dotprod),
        ];
        all.into_iter().filter_map(|(name, present)| present.then_some(name)).collect()
    }
}

static FEATURES: OnceLock<Features> = OnceLock::new();

/// What this CPU supports, detected on first call and the same for the
/// rest of the process (so every kernel choice, log line and `/v1/stats`
/// agree).
pub fn features() -> Features {
    *FEATURES.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Features {
    Features {
        avx2: is_x86_feature_detected!("avx2"),
        fma: is_x86_feature_detected!("fma"),
        avx512f: is_x86_feature_detected!("avx512f"),
        avx512bw: is_x86_feature_detected!("avx512bw"),
        avx512vnni: is_x86_feature_detected!("avx512vnni"),
        ..Features::default()
    }
}

#[cfg(target_arch = "aarch64")]
fn detect() -> Features {
    Features {
        neon: std::arch::is_aarch64_feature_detected!("neon"),
        dotprod: std::arch::is_aarch64_feature_detected!("dotprod"),
        ..Features::default()
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect() -> Features {
    Features::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_list_exactly_the_features_present_in_field_order() {
        let some = Features { avx2: true, avx512bw: true, dotprod: true, ..Features::default() };

        assert_eq!(some.names(), ["avx2", "avx512bw", "dotprod"]);
        assert!(Features::default().names().is_empty());
        eprintln!("cpu features here: {:?}", features().names());
    }
}
