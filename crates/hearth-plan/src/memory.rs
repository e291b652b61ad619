//! How much memory this machine can give a new process: `MemAvailable`
//! from /proc/meminfo, capped by the control group's limit (cgroup v2
//! `memory.max`, v1 `memory.limit_in_bytes`) less what the group already
//! uses, and by `HEARTH_MEMORY_LIMIT` when set.

use std::path::Path;

use serde::Serialize;

use crate::PlanError;

/// Environment variable that caps the memory the planner may use, in bytes
/// or with a K/M/G/T suffix (powers of 1024): `HEARTH_MEMORY_LIMIT=2G`.
pub const MEMORY_LIMIT_ENV: &str = "HEARTH_MEMORY_LIMIT";

/// Where the available figure came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum MemorySource {
    /// `MemAvailable` in /proc/meminfo.
    MemAvailable,
    /// The control group's limit less its current use (without
    /// reclaimable page cache), lower than `MemAvailable`.
    Cgroup { limit: u64 },
    /// [`MEMORY_LIMIT_ENV`], lower than what the system reports.
    Limit,
    /// No /proc/meminfo to read (not Linux) and no [`MEMORY_LIMIT_ENV`]:
    /// nothing is refused.
    Unknown,
}

impl std::fmt::Display for MemorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemorySource::MemAvailable => write!(f, "MemAvailable"),
            MemorySource::Cgroup { limit } => {
                write!(f, "cgroup limit {}", crate::format::bytes(*limit))
            }
            MemorySource::Limit => write!(f, "{MEMORY_LIMIT_ENV}"),
            MemorySource::Unknown => write!(f, "unknown: no /proc/meminfo"),
        }
    }
}

/// Memory a new model may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Available {
    pub bytes: u64,
    pub source: MemorySource,
}

/// A control group's memory figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CgroupMemory {
    pub limit: u64,
    pub usage: u64,
    /// Page cache the group could drop (`inactive_file`).
    pub reclaimable: u64,
}

/// Limits at or above this are "no limit" (cgroup v1 writes one near 2⁶³).
const NO_LIMIT: u64 = 1 << 60;

impl Available {
    /// This machine's figure, read from /proc and /sys and
    /// [`MEMORY_LIMIT_ENV`].
    /// Without /proc/meminfo (not Linux) it is [`MEMORY_LIMIT_ENV`], or
    /// unlimited ([`MemorySource::Unknown`]).
    pub fn probe() -> Result<Available, PlanError> {
        let limit = std::env::var(MEMORY_LIMIT_ENV).ok();
        match std::fs::read_to_string("/proc/meminfo") {
            Ok(meminfo) => Self::from_parts(&meminfo, cgroup_memory(), limit.as_deref()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let unknown = Available {
                    bytes: u64::MAX,
                    source: MemorySource::Unknown,
                };
                unknown.capped(None, limit.as_deref())
            }
            Err(e) => Err(PlanError::Memory {
                why: format!("cannot read /proc/meminfo: {e}"),
            }),
        }
    }

    /// The figure from the contents of /proc/meminfo, the control group's
    /// figures, and a [`MEMORY_LIMIT_ENV`] value.
    pub fn from_parts(
        meminfo: &str,
        cgroup: Option<CgroupMemory>,
        limit: Option<&str>,
    ) -> Result<Available, PlanError> {
        let mem_available = meminfo_field(meminfo, "MemAvailable").ok_or(PlanError::Memory {
            why: "/proc/meminfo has no MemAvailable line".into(),
        })?;
        let best = Available {
            bytes: mem_available,
            source: MemorySource::MemAvailable,
        };
        best.capped(cgroup, limit)
    }

    /// This figure lowered to the control group's room and to `limit`.
    fn capped(
        self,
        cgroup: Option<CgroupMemory>,
        limit: Option<&str>,
    ) -> Result<Available, PlanError> {
        let mut best = self;
        if let Some(cg) = cgroup.filter(|c| c.limit < NO_LIMIT) {
            let used = cg.usage.saturating_sub(cg.reclaimable);
            let left = cg.limit.saturating_sub(used);
            if left < best.bytes {
                best = Available {
                    bytes: left,
                    source: MemorySource::Cgroup { limit: cg.limit },
                };
            }
        }
        if let Some(s) = limit {
            let cap = parse_size(s).ok_or_else(|| PlanError::Memory {
                why: format!(
                    "{MEMORY_LIMIT_ENV}='{s}' is not a size (bytes, or a number with K, M, G or T)"
                ),
            })?;
            if cap < best.bytes {
                best = Available {
                    bytes: cap,
                    source: MemorySource::Limit,
                };
            }
        }
        Ok(best)
    }
}

/// A `Name:   123 kB` line of /proc/meminfo, in bytes.
fn meminfo_field(meminfo: &str, name: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix(':')?;
        let mut it = rest.split_whitespace();
        let n: u64 = it.next()?.parse().ok()?;
        match it.next() {
            Some("kB") => n.checked_mul(1024),
            None => Some(n),
            Some(_) => None,
        }
    })
}

/// `123`, `512K`, `2M`, `1.5G`, `2GiB`, `3T` (powers of 1024) in bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit = unit.trim().to_ascii_uppercase();
    let mult: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    if num.is_empty() {
        return None;
    }
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult);
    }
    let x: f64 = num.parse().ok()?;
    let bytes = x * mult as f64;
    (x.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// This process's control group memory figures, v2 or v1.
fn cgroup_memory() -> Option<CgroupMemory> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let root = Path::new("/sys/fs/cgroup");
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            // v2: the group's directory, or the namespace's root.
            for dir in [root.join(rel), root.to_path_buf()] {
                if let Some(m) = read_cgroup(&dir, "memory.max", "memory.current", "inactive_file")
                {
                    return Some(m);
                }
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            let base = root.join("memory");
            for dir in [base.join(rel), base.clone()] {
                if let Some(m) = read_cgroup(
                    &dir,
                    "memory.limit_in_bytes",
                    "memory.usage_in_bytes",
                    "total_inactive_file",
                ) {
                    return Some(m);
                }
            }
        }
    }
    None
}

fn read_cgroup(dir: &Path, limit: &str, usage: &str, inactive: &str) -> Option<CgroupMemory> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let limit = match read(limit)?.trim() {
        "max" => u64::MAX,
        v => v.parse().ok()?,
    };
    let usage = read(usage).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let reclaimable = read("memory.stat")
        .and_then(|s| {
            s.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == inactive).then(|| v.trim().parse().ok())?
            })
        })
        .unwrap_or(0);
    Some(CgroupMemory {
        limit,
        usage,
        reclaimable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str =
        "MemTotal:       24684084 kB\nMemFree:  100 kB\nMemAvailable:   22922772 kB\n";

    #[test]
    fn mem_available_alone() {
        let a = Available::from_parts(MEMINFO, None, None).expect("parses");
        assert_eq!(a.bytes, 22922772 * 1024);
        assert_eq!(a.source, MemorySource::MemAvailable);
    }

    #[test]
    fn cgroup_limit_caps_it() {
        let cg = CgroupMemory {
            limit: 4 << 30,
            usage: 3 << 30,
            reclaimable: 1 << 30,
        };
        let a = Available::from_parts(MEMINFO, Some(cg), None).expect("parses");
        assert_eq!(a.bytes, 2 << 30);
        assert_eq!(a.source, MemorySource::Cgroup { limit: 4 << 30 });
        // "No limit" and a limit above what is free change nothing.
        for limit in [u64::MAX, 9223372036854771712, 100 << 30] {
            let cg = CgroupMemory {
                limit,
                usage: 0,
                reclaimable: 0,
            };
            let a = Available::from_parts(MEMINFO, Some(cg), None).expect("parses");
            assert_eq!(a.source, MemorySource::MemAvailable);
        }
    }

    #[test]
    fn env_limit_caps_it() {
        let a = Available::from_parts(MEMINFO, None, Some("300M")).expect("parses");
        assert_eq!(a.bytes, 300 << 20);
        assert_eq!(a.source, MemorySource::Limit);
        let a = Available::from_parts(MEMINFO, None, Some("1T")).expect("parses");
        assert_eq!(a.source, MemorySource::MemAvailable);
    }

    #[test]
    fn without_meminfo_only_the_limit_counts() {
        let unknown = Available {
            bytes: u64::MAX,
            source: MemorySource::Unknown,
        };
        let a = unknown.clone().capped(None, None).expect("no limit");
        assert_eq!(a, unknown);
        let a = unknown.capped(None, Some("1G")).expect("limit");
        assert_eq!((a.bytes, a.source), (1 << 30, MemorySource::Limit));
    }

    #[test]
    fn bad_inputs_are_errors() {
        for bad in [
            "",
            "lots",
            "12Q",
            "-5G",
            "G",
            "1e999G",
            "99999999999999999999T",
        ] {
            let e = Available::from_parts(MEMINFO, None, Some(bad)).expect_err(bad);
            assert!(e.to_string().contains(MEMORY_LIMIT_ENV), "{e}");
        }
        let e = Available::from_parts("MemTotal: 5 kB\n", None, None).expect_err("no field");
        assert!(e.to_string().contains("MemAvailable"), "{e}");
        let e = Available::from_parts("MemAvailable: many kB\n", None, None).expect_err("bad");
        assert!(e.to_string().contains("MemAvailable"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("2K"), Some(2048));
        assert_eq!(parse_size("2 MiB"), Some(2 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("4GB"), Some(4 << 30));
        assert_eq!(parse_size("1.2.3G"), None);
    }

    #[test]
    fn probe_reads_this_machine() {
        let a = Available::probe().expect("probe");
        assert!(a.bytes > 0);
    }
}
