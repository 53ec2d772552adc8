//! The process's own CPU time, for the metrics and for the transcoder's overload policy.

/// The kernel's USER_HZ: 100 on every Linux architecture Ferrocast ships for (sysconf is out of
/// reach without libc).
const TICKS_PER_SEC: f64 = 100.0;

/// User plus system CPU time this process has used, in seconds, from `/proc/self/stat`; `None`
/// where that cannot be read (not Linux).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_seconds_of(&stat)
}

fn cpu_seconds_of(stat: &str) -> Option<f64> {
    // Fields after the parenthesised command name, which may itself hold spaces and ')'.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let get = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some((get(14)? + get(15)?) as f64 / TICKS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime() {
        let stat = "4242 (fer ro) cast) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 2000 300";
        assert_eq!(cpu_seconds_of(stat), Some(3.0));
        assert_eq!(cpu_seconds_of("garbage"), None);
        assert!(cpu_seconds().is_some_and(|s| s >= 0.0));
    }
}
