//! `gate serve-demo`: the sample service alone, until Ctrl-C.

use std::net::SocketAddr;

use crate::cli::ServeDemoArgs;
use crate::demo::{DemoOptions, DemoServer, Regression};
use crate::units::parse_duration;
use crate::{Error, Outcome};

use super::pipeline::Output;

pub fn serve_demo(args: ServeDemoArgs, io: &mut Output<'_>) -> Result<Outcome, Error> {
    let addr: SocketAddr = args.addr.parse().map_err(|_| {
        Error::usage(
            "--addr",
            format!("`{}` is not IP:PORT (e.g. 127.0.0.1:8080)", args.addr),
        )
    })?;
    if !addr.ip().is_loopback() {
        return Err(Error::usage(
            "--addr",
            format!(
                "{addr} is not a loopback address; the sample service only listens on 127.0.0.1 or ::1"
            ),
        ));
    }
    let regress = args
        .regress
        .as_deref()
        .map(|r| {
            r.parse::<Regression>()
                .map_err(|e| Error::usage("--regress", e.to_string()))
        })
        .transpose()?;
    let latency = args
        .latency
        .as_deref()
        .map(|l| parse_duration(l).map_err(|m| Error::usage("--latency", m)))
        .transpose()?;
    if let Some(sigma) = args.jitter
        && !(sigma.is_finite() && (0.0..=3.0).contains(&sigma))
    {
        return Err(Error::usage("--jitter", "sigma must be between 0 and 3"));
    }
    let db_latency = args
        .db_latency
        .as_deref()
        .map(|l| parse_duration(l).map_err(|m| Error::usage("--db-latency", m)))
        .transpose()?;
    let stall = args
        .stall
        .as_deref()
        .map(|v| {
            let bad = || Error::usage("--stall", format!("`{v}` is not AT,LEN (e.g. 5s,1s)"));
            let (at, len) = v.split_once(',').ok_or_else(bad)?;
            Ok::<_, Error>((
                parse_duration(at).map_err(|_| bad())?,
                parse_duration(len).map_err(|_| bad())?,
            ))
        })
        .transpose()?;
    let opts = DemoOptions {
        regress,
        latency,
        jitter: args.jitter,
        seed: args.seed,
        db_latency,
        stall,
    };
    let server = DemoServer::start(addr, opts)?;
    let s = server.seed_stats();
    // A closed stdout (the reader went away) must not take the service down with it.
    let out = &mut *io.out;
    let _ = writeln!(
        out,
        "sample service on {} ({} products, {} users, {} orders, {} line items; seeded in {} ms){}{}",
        server.url(),
        s.products,
        s.users,
        s.orders,
        s.line_items,
        s.seed_time.as_millis(),
        regress
            .map(|r| format!("; regression: {r}"))
            .unwrap_or_default(),
        latency
            .map(|l| format!("; upstream latency {l:?}"))
            .unwrap_or_default(),
    );
    let _ = writeln!(out, "Ctrl-C to stop");
    let _ = out.flush();
    server.wait_for_ctrl_c();
    Ok(Outcome::Pass)
}
