//! Fleet-scale benchmarking for atoll: a seeded generator of realistic fleets ([`generator`]) and a
//! harness that runs commands as child processes and reads back their wall time, CPU time and
//! peak RSS from the kernel ([`measure`]). The `atoll bench` subcommand drives both.

// Not yet documented item by item: the workspace lints ask for docs on every public item,
// and this crate has not caught up (see the README, issue 12).
#![allow(missing_docs)]

pub mod generator;
pub mod measure;
pub mod serve;
pub mod suite;

/// What can go wrong while generating or measuring.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Git(#[from] atoll_gitops::GitError),
    #[error("{0}")]
    Failed(String),
}
