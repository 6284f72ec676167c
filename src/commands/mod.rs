//! One file per subcommand: the only place the rooms meet.

mod calibrate;
mod charts;
mod ci;
mod compare;
mod demo;
mod history;
mod paired;
mod publish;
mod run;
mod serve_demo;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cli::Command;
use crate::{Error, Outcome};

pub fn dispatch(command: Command) -> Result<Outcome, Error> {
    match command {
        Command::Run(args) => run::run(args),
        Command::Compare(args) => compare::compare(args),
        Command::Chart(args) => charts::chart(args),
        Command::Calibrate(args) => calibrate::calibrate(args),
        Command::Demo(args) => demo::demo(args),
        Command::ServeDemo(args) => serve_demo::serve_demo(args),
        Command::Ci(args) => ci::ci(args),
        Command::Publish(args) => publish::publish(args),
        Command::History(cmd) => history::history(cmd),
    }
}

/// First Ctrl-C: stop sending, report what was measured (marked partial). Second: exit now.
pub(crate) fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let spawned = std::thread::Builder::new()
        .name("gate-signal".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    f.store(true, Ordering::Relaxed);
                    eprintln!(
                        "\ninterrupted: finishing in-flight requests (Ctrl-C again to abort)"
                    );
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(130);
                    }
                }
            });
        });
    // Without the handler, Ctrl-C still stops the process; only the partial report is lost.
    let _ = spawned;
    flag
}
