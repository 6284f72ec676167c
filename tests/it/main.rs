//! The integration tests, one binary: each test binary links the whole crate again, which is most
//! of a debug build's time, so every suite is a module here. Tests run as threads of one process:
//! none may change the process's environment or current directory (set them on the `Command`
//! that runs `gate` instead), and each brings its own scratch database, directory and ports.

mod action;
mod baselines;
mod ci;
mod cli;
mod common;
mod compare;
mod dashboard;
mod demo;
mod faults;
mod flows;
mod fuzz;
mod history;
mod hostile;
mod init;
mod junit;
mod llm;
mod notify;
mod paired;
mod proxy;
mod shard;
mod tls;
mod workflows;
