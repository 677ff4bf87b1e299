//! Runs a command as a child process and reads its resource use back from the kernel with
//! `wait4`: wall time, user + system CPU time and peak resident set size. Measuring children
//! rather than the harness itself keeps each figure to one scenario.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What one run of one command cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    /// Wall-clock time.
    pub wall: Duration,
    /// User + system CPU time of the process and its children.
    pub cpu: Duration,
    /// Peak resident set size, bytes.
    pub peak_rss: u64,
}

impl Cost {
    /// Sums runs that happened one after the other (peak RSS is the largest).
    pub fn then(self, o: Cost) -> Cost {
        Cost {
            wall: self.wall + o.wall,
            cpu: self.cpu + o.cpu,
            peak_rss: self.peak_rss.max(o.peak_rss),
        }
    }
}

/// A finished run: its cost and what it printed.
pub struct Run {
    /// What it cost.
    pub cost: Cost,
    /// Its exit status, stdout and stderr.
    pub output: Output,
}

/// Runs `cmd` to completion, capturing stdout and stderr.
pub fn run(cmd: &mut Command) -> Result<Run, crate::Error> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut b).map(|_| b)
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut b).map(|_| b)
    });
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if r < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let stdout = t_out.join().expect("reader")?;
    let stderr = t_err.join().expect("reader")?;
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let cost = Cost {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        peak_rss: usage.ru_maxrss as u64 * 1024,
    };
    Ok(Run {
        cost,
        output: Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(status),
            stdout,
            stderr,
        },
    })
}
