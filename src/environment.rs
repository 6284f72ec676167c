//! The environment fingerprint: runs are only compared with runs measured on a like machine.

use serde::{Deserialize, Serialize};

/// Bumped when the engine's measurement changes meaning (what a latency covers, histogram
/// settings). Runs measured differently are never compared. Kept apart from the package
/// version so that upgrading gate does not throw away a team's baseline history.
pub const MEASUREMENT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub os: String,
    pub arch: String,
    pub cpu_model: String,
    pub cores: usize,
    pub measurement_version: u32,
    /// Free text from `--env-tag` (e.g. "staging-eu"), for runs that differ in ways gate can't see.
    pub tag: Option<String>,
    /// Hash of all of the above; equal fingerprints are comparable.
    pub fingerprint: String,
}

impl Environment {
    pub fn detect(tag: Option<String>) -> Environment {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Environment::new(
            std::env::consts::OS,
            std::env::consts::ARCH,
            &cpu_model,
            cores,
            tag,
        )
    }

    pub fn new(
        os: &str,
        arch: &str,
        cpu_model: &str,
        cores: usize,
        tag: Option<String>,
    ) -> Environment {
        let key = format!(
            "{os}|{arch}|{cpu_model}|{cores}|{MEASUREMENT_VERSION}|{}",
            tag.as_deref().unwrap_or("")
        );
        Environment {
            os: os.into(),
            arch: arch.into(),
            cpu_model: cpu_model.into(),
            cores,
            measurement_version: MEASUREMENT_VERSION,
            tag,
            fingerprint: format!("{:016x}", fnv1a(key.as_bytes())),
        }
    }

    /// "linux x86_64, 2 cores, Intel Xeon …".
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} {}, {} cores, {}",
            self.os, self.arch, self.cores, self.cpu_model
        );
        if let Some(t) = &self.tag {
            s.push_str(&format!(", tag {t}"));
        }
        s
    }
}

/// FNV-1a, 64 bit: a stable, dependency-free hash for identities (not for security).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_depends_on_machine_and_tag_only() {
        let a = Environment::new("linux", "x86_64", "Xeon", 2, None);
        let b = Environment::new("linux", "x86_64", "Xeon", 2, None);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(
            a.fingerprint,
            Environment::new("linux", "x86_64", "Xeon", 4, None).fingerprint
        );
        assert_ne!(
            a.fingerprint,
            Environment::new("linux", "x86_64", "Xeon", 2, Some("eu".into())).fingerprint
        );
        assert!(!Environment::detect(None).cpu_model.is_empty());
    }
}
