//! Fleet-scale benchmarking for atoll: a seeded generator of realistic fleets ([`generator`]) and a
//! harness that runs commands as child processes and reads back their wall time, CPU time and
//! peak RSS from the kernel ([`measure`]). The `atoll bench` subcommand drives both.

pub mod generator;
pub mod measure;
pub mod serve;
pub mod suite;

/// What can go wrong while generating or measuring.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the fleet or starting a command failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Making the upstream package repository failed.
    #[error("{0}")]
    Git(#[from] atoll_gitops::GitError),
    /// A measured command failed (its output).
    #[error("{0}")]
    Failed(String),
}
