//! The command line, as clap derive types. Nothing here is used past `commands`: each subcommand
//! turns its args into validated settings first.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A performance regression gate for HTTP APIs.
///
/// Exit codes: 0 pass · 1 gate failed (regression or SLO breach) · 2 usage or bad input ·
/// 3 infrastructure (target unreachable, database, I/O).
#[derive(Debug, Parser)]
#[command(name = "gate", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only move the bytes"
)]
pub enum Command {
    /// Load-test every scenario of a suite and check the SLO thresholds.
    Run(RunArgs),
    /// Compare HEAD with BASE: per endpoint, is it slower, faster, or unchanged?
    Compare(CompareArgs),
    /// Draw trend, distribution and overview charts (PNG) from the history.
    Chart(ChartArgs),
    /// Measure the gate's own error rates: A/A false alarms and A/B detection.
    Calibrate(CalibrateArgs),
    /// The whole story on the bundled sample service: no network, no setup.
    Demo(DemoArgs),
    /// Serve the bundled sample service (shop API over SQLite) until Ctrl-C.
    ServeDemo(ServeDemoArgs),
    /// On a pull request: run, save, compare with the baseline branch, chart, and publish the
    /// verdict (one sticky PR comment, charts, job summary). Exits per the verdict.
    Ci(CiArgs),
    /// Post the verdict bundle of `gate ci --bundle` (the fork-safe workflow's trusted half).
    Publish(PublishArgs),
    /// Merge the documents of sharded runs (`--shard I/N`) into one run: histograms added
    /// exactly, thresholds checked, optionally saved (docs/scale.md).
    Merge(MergeArgs),
    /// The run history: list, show, prune, export, import.
    #[command(subcommand)]
    History(HistoryCommand),
    /// Build a static trend site from the history (HTML and SVG: no script, no network; open
    /// index.html from disk or publish the directory, e.g. to GitHub Pages).
    Dashboard(DashboardArgs),
    /// Write a starter suite and the PR workflow, or (with --from-access-log) one scenario per
    /// most-used route of an access log, with the ids it saw and its observed rate and latency.
    Init(InitArgs),
    /// Print a shell completion script, e.g. `gate completions bash > /etc/bash_completion.d/gate`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, or write one page per command into DIR.
    Man {
        /// Write gate.1, gate-run.1, … into DIR instead.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Build the suite from this access log (nginx/Apache combined or common, or JSON lines;
    /// gzip is inflated; `-` reads stdin; see docs/init.md). Without it: a starter suite and
    /// .github/workflows/perf-gate.yml.
    #[arg(long, value_name = "FILE")]
    pub from_access_log: Option<PathBuf>,
    /// How many routes to write, the most requested first.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 8,
        requires = "from_access_log"
    )]
    pub top: usize,
    /// Where the scenarios go (created if missing).
    #[arg(long, value_name = "DIR", default_value = "scenarios")]
    pub out: PathBuf,
    /// Multiply every observed rate by F (e.g. 0.1 for a tenth of production traffic).
    #[arg(
        long,
        value_name = "F",
        default_value_t = 1.0,
        requires = "from_access_log"
    )]
    pub scale: f64,
    /// The URL of the service under test, written into suite.yml (and the workflow).
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Replace files that already exist (without it, an existing file stops gate init, exit 2).
    #[arg(long)]
    pub force: bool,
    /// The log's layout; `auto` reads each line as whichever it is.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Auto, requires = "from_access_log")]
    pub format: LogFormat,
    /// Also write routes of other methods than GET/HEAD, with a placeholder body (access logs
    /// have no request bodies).
    #[arg(long, requires = "from_access_log")]
    pub include_writes: bool,
    /// Which JSON key holds a field, tried before the guesses: NAME is method, path, request,
    /// status, time or duration (with the unit of a bare number: `duration=elapsed:ms`).
    /// Repeat for several. Nested keys with dots: `path=http.target`.
    #[arg(
        long = "json-field",
        value_name = "NAME=KEY[:UNIT]",
        requires = "from_access_log"
    )]
    pub json_fields: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Auto,
    Combined,
    Common,
    Json,
}

/// `--notify`: shared by `gate run`, `gate compare` and `gate ci`.
#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    /// Post the verdict to a Slack incoming webhook: `slack:URL`. A failed post only warns; it
    /// never changes the exit code, and the URL's secret path is never printed.
    #[arg(
        long,
        value_name = "slack:URL",
        env = "GATE_SLACK_WEBHOOK",
        hide_env_values = true
    )]
    pub notify: Option<String>,
    /// When to post: when the gate fails (a regression or a broken SLO), or after every verdict.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = NotifyOn::Regression)]
    pub notify_on: NotifyOn,
    /// A link for the message, e.g. the dashboard (default in GitHub Actions: the workflow run).
    #[arg(long, value_name = "URL")]
    pub notify_link: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NotifyOn {
    Regression,
    Always,
}

#[derive(Debug, Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Where to write the site (created if missing; files of the same name are replaced).
    #[arg(long, value_name = "DIR", default_value = "site")]
    pub out: PathBuf,
    /// How many of the branch's newest runs to show.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub last: usize,
    /// The branch whose runs to show (default: the suite's baseline branch, else main).
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// The suite whose SLO thresholds and tolerances apply (when present).
    #[arg(long, value_name = "DIR|FILE", default_value = "scenarios")]
    pub suite: PathBuf,
}

#[derive(Debug, Args)]
pub struct DbArg {
    /// The history: an SQLite file, or a PostgreSQL URL (postgres://user@host:port/dbname;
    /// the password in the URL or PGPASSWORD, never shown).
    #[arg(
        long,
        value_name = "PATH|URL",
        env = "GATE_DB",
        default_value = ".gate/history.db"
    )]
    pub db: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// List runs, oldest first (newest at the bottom).
    List {
        #[command(flatten)]
        db: DbArg,
        /// Only runs of this branch.
        #[arg(long, value_name = "BRANCH")]
        branch: Option<String>,
        /// Only the newest N runs.
        #[arg(long, value_name = "N", default_value_t = 20)]
        last: usize,
    },
    /// Show one run: its context and every endpoint's figures.
    Show {
        #[command(flatten)]
        db: DbArg,
        /// The run id (from `gate history list`).
        run: i64,
    },
    /// Delete old runs: keep the newest N per branch and every run a baseline needs.
    Prune {
        #[command(flatten)]
        db: DbArg,
        /// Runs to keep per branch.
        #[arg(long, value_name = "N")]
        keep: usize,
        /// The baseline branch whose needed runs are never deleted.
        #[arg(long, value_name = "BRANCH", default_value = "main")]
        baseline_branch: String,
        /// How many runs make a baseline (kept per environment).
        #[arg(long, value_name = "K", default_value_t = 5)]
        baseline_runs: usize,
    },
    /// Write runs (with histograms) as a versioned JSON file, e.g. baselines/example-main.json.
    Export {
        #[command(flatten)]
        db: DbArg,
        /// Only runs of this branch (default: all).
        #[arg(long, value_name = "BRANCH")]
        branch: Option<String>,
        /// Write to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Add the runs of an export file (runs already present are skipped).
    Import {
        #[command(flatten)]
        db: DbArg,
        /// The export file (`-` for stdin).
        file: PathBuf,
    },
    /// Copy every run of one history into another (SQLite file or PostgreSQL URL, either way);
    /// runs already there (same uid) are skipped, so copying again copies nothing.
    Copy {
        /// The history to read (a file or postgres:// URL).
        #[arg(long, value_name = "PATH|URL")]
        from: PathBuf,
        /// The history to add the runs to (created when new).
        #[arg(long, value_name = "PATH|URL")]
        to: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub load: LoadArgs,

    /// Also write the results as a versioned JSON document to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// A free-form label stored with the run (e.g. "nightly").
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,

    /// Never show a progress bar (plain progress lines are still printed to stderr).
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten)]
    pub db: DbArg,

    /// Do not save the run to the history.
    #[arg(long)]
    pub no_save: bool,

    /// Write the charts this run can draw on its own (ramps) into DIR.
    #[arg(long, value_name = "DIR")]
    pub charts: Option<PathBuf>,

    #[command(flatten)]
    pub notify: NotifyArgs,

    /// Also write the results as JUnit XML to FILE (one test case per endpoint; broken
    /// thresholds are failures), for CI systems that show test reports (GitLab, Jenkins, Azure).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Send shard I of N's share of the load (I from 1), or `k8s/N` (I from the Indexed Job's
    /// JOB_COMPLETION_INDEX). A shard writes its document (--json) for `gate merge`; it is not
    /// judged and not saved (docs/scale.md).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    Table,
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline: a branch (its baseline runs at the merge-base, else its latest runs), a
    /// commit, or a run id (`12` or `#12`). Not with --base-target.
    #[arg(
        required_unless_present = "base_target",
        conflicts_with = "base_target"
    )]
    pub base: Option<String>,
    /// What to judge: `HEAD` (the current commit's runs), a branch (its latest run), a commit,
    /// or a run id.
    #[arg(default_value = "HEAD")]
    pub head: String,

    #[command(flatten)]
    pub db: DbArg,

    /// Output format.
    #[arg(long, value_enum, default_value_t = CompareFormat::Table)]
    pub format: CompareFormat,

    /// The suite whose tolerances, SLO thresholds and baseline settings apply (when present).
    #[arg(long, value_name = "DIR|FILE", default_value = "scenarios")]
    pub suite: PathBuf,

    /// Smallest p95 change that counts, overriding the suite (e.g. 10%).
    #[arg(long, value_name = "PERCENT")]
    pub tolerance: Option<String>,

    /// Fail (exit 1) when an endpoint is inconclusive.
    #[arg(long)]
    pub strict: bool,

    /// Also write trend and distribution charts (PNG) of this comparison into DIR.
    #[arg(long, value_name = "DIR")]
    pub charts: Option<PathBuf>,

    #[command(flatten)]
    pub notify: NotifyArgs,

    #[command(flatten)]
    pub paired: PairedArgs,

    /// Paired mode: the deployment under test (default: the suite's `target:`).
    #[arg(long, value_name = "URL", requires = "base_target")]
    pub target: Option<String>,

    /// Paired mode: measure only the scenarios with these names (repeatable).
    #[arg(long = "scenario", value_name = "NAME", requires = "base_target")]
    pub scenarios: Vec<String>,
}

/// Paired mode, shared by `gate compare` and `gate ci`: measure a baseline deployment beside
/// the target at the same time, in paired blocks, instead of comparing with the history
/// (docs/paired.md).
#[derive(Debug, Args)]
pub struct PairedArgs {
    /// Paired mode: the baseline deployment (e.g. the merge-base build), measured side by side
    /// with the target, both at once; both sides are saved to the history.
    #[arg(long, value_name = "URL")]
    pub base_target: Option<String>,

    /// Paired mode: rounds per scenario, each two blocks long; each scenario measures both
    /// sides at once for 2 × N blocks after its own warmup [default: 13].
    #[arg(long, value_name = "N", requires = "base_target")]
    pub rounds: Option<u32>,

    /// Paired mode: length of each block, the time slice a base/head pair is cut from
    /// [default: 1500ms].
    #[arg(long, value_name = "DURATION", requires = "base_target")]
    pub block: Option<String>,
}

#[derive(Debug, Args)]
pub struct ChartArgs {
    #[command(flatten)]
    pub db: DbArg,

    /// The branch whose runs to draw (default: the current branch, else the baseline branch).
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,

    /// How many of the branch's newest runs to draw.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub last: usize,

    /// Only this endpoint.
    #[arg(long, value_name = "NAME")]
    pub endpoint: Option<String>,

    /// Where to write the PNG files.
    #[arg(long, value_name = "DIR", default_value = ".gate/charts")]
    pub out: PathBuf,

    /// Image size in pixels.
    #[arg(long, value_name = "WxH", default_value = "1200x600")]
    pub size: String,

    /// The suite whose SLO thresholds and baseline settings apply (when present).
    #[arg(long, value_name = "DIR|FILE", default_value = "scenarios")]
    pub suite: PathBuf,
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Measure a running deployment instead of the bundled sample service. Only A/A (false
    /// alarms) is possible then: gate cannot slow an outside service down by a known amount.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,

    /// Runs per arm (A, and each slowdown); comparisons reuse this pool.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub trials: usize,

    /// The suite to run (default: the bundled sample suite).
    #[arg(long, value_name = "DIR|FILE")]
    pub suite: Option<PathBuf>,

    /// Override each scenario's measured duration (default: the suite's own settings).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Override each scenario's warmup.
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<String>,

    /// Known slowdowns to detect, as fractions of the simulated upstream delay.
    #[arg(
        long,
        value_name = "FRACTION",
        value_delimiter = ',',
        default_value = "0.1,0.2"
    )]
    pub slowdowns: Vec<f64>,

    /// Baseline runs per comparison (K).
    #[arg(long, value_name = "K", default_value_t = 5)]
    pub baseline_runs: usize,

    /// Comparisons drawn per head run (distinct baseline subsets of the A pool).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub subsets: usize,

    /// Save the measured pool of runs to FILE (JSON), to judge it again later with --from.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,

    /// Judge a pool saved earlier with --save instead of measuring (no load is sent).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["target", "save"])]
    pub from: Option<PathBuf>,

    /// Calibrate paired mode: two sample services side by side, --trials paired comparisons per
    /// arm (A/A, and a head slowed by each of --slowdowns), judged as `--base-target` would.
    #[arg(long, conflicts_with_all = ["target", "from", "save"])]
    pub paired: bool,

    /// Run a noisy neighbour during the calibration: CPU-burning threads switched on and off at
    /// random (100 ms-2 s periods), like the other jobs of a shared CI runner.
    #[arg(long)]
    pub noise: bool,

    /// With --noise: how many CPU-burning threads.
    #[arg(long, value_name = "N", default_value_t = 2, requires = "noise")]
    pub noise_threads: usize,

    /// With --paired: rounds per scenario [default: as `gate compare --base-target`].
    #[arg(long, value_name = "N", requires = "paired")]
    pub rounds: Option<u32>,

    /// With --paired: measured time of each block [default: as `gate compare --base-target`].
    #[arg(long, value_name = "DURATION", requires = "paired")]
    pub block: Option<String>,

    /// Calibrate only the scenarios with these names (repeatable).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Measured time per scenario and run (the demo keeps runs short on purpose).
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub duration: String,

    /// Where to write the story's charts.
    #[arg(long, value_name = "DIR", default_value = ".gate/demo-charts")]
    pub charts: PathBuf,

    /// Baseline runs of `main` before the pull request's run.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub baseline_runs: usize,
}

#[derive(Debug, Args)]
pub struct ServeDemoArgs {
    /// Address to listen on; loopback only by design.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,

    /// Switch on a real regression (n-plus-one: user orders fetch line items one query per order).
    #[arg(long, value_name = "NAME")]
    pub regress: Option<String>,

    /// Add a simulated upstream delay to every API request (e.g. 20ms).
    #[arg(long, value_name = "DURATION")]
    pub latency: Option<String>,

    /// Spread the simulated delay log-normally with this sigma (default 0.25 when given bare).
    #[arg(long, value_name = "SIGMA", num_args = 0..=1, default_missing_value = "0.25", requires = "latency")]
    pub jitter: Option<f64>,

    /// Simulate a network round trip to the database on every SQL statement (e.g. 100us).
    #[arg(long, value_name = "DURATION")]
    pub db_latency: Option<String>,

    /// Freeze the whole service once, AT after start-up, for LEN (e.g. 5s,1s): a coordinated-
    /// omission test target.
    #[arg(long, value_name = "AT,LEN")]
    pub stall: Option<String>,

    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Where and how to publish on GitHub; shared by `gate ci` and `gate publish`.
#[derive(Debug, Args)]
pub struct GitHubArgs {
    /// OWNER/NAME of the repository (default: GITHUB_REPOSITORY).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,

    /// REST API base (default: GITHUB_API_URL, else the public API).
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,

    /// Web base for links to the charts (default: GITHUB_SERVER_URL, else the public site).
    #[arg(long, value_name = "URL")]
    pub server_url: Option<String>,

    /// Append the verdict's markdown to FILE (default: GITHUB_STEP_SUMMARY).
    #[arg(long, value_name = "FILE")]
    pub summary: Option<PathBuf>,

    /// Branch the chart images are committed to (created as an orphan branch if missing).
    #[arg(long, value_name = "BRANCH", default_value = "gate-assets")]
    pub assets_branch: String,

    /// Keep a separate comment per KEY (e.g. one per environment of a matrix job); the default
    /// is one gate comment per PR.
    #[arg(long, value_name = "KEY")]
    pub comment_key: Option<String>,
}

/// `gate ci`. GitHub settings come from the Actions environment (`GITHUB_TOKEN`,
/// `GITHUB_REPOSITORY`, `GITHUB_API_URL`, `GITHUB_SERVER_URL`, `GITHUB_EVENT_PATH`, `GITHUB_SHA`,
/// `GITHUB_BASE_REF`, `GITHUB_STEP_SUMMARY`); the flags override them. The token is only ever
/// read from `GITHUB_TOKEN`, never from a flag (command lines end up in logs).
#[derive(Debug, Args)]
pub struct CiArgs {
    /// The PR to comment on (default: from GITHUB_EVENT_PATH's pull_request.number).
    #[arg(long, value_name = "N")]
    pub pr: Option<u64>,

    /// Print the comment's markdown to stdout instead of posting it (no token needed).
    #[arg(long)]
    pub dry_run: bool,

    /// Do not post: write the verdict and charts to DIR for `gate publish` in a separate,
    /// trusted job (the fork-safe workflow). No token needed.
    #[arg(long, value_name = "DIR", conflicts_with = "dry_run")]
    pub bundle: Option<PathBuf>,

    /// The baseline branch (default: GITHUB_BASE_REF, else the suite's `baseline.branch`).
    #[arg(long, value_name = "BRANCH")]
    pub baseline: Option<String>,

    #[command(flatten)]
    pub github: GitHubArgs,

    /// Where the charts are written (also worth uploading as a workflow artifact).
    #[arg(long, value_name = "DIR", default_value = ".gate/ci-charts")]
    pub charts: PathBuf,

    /// Do not draw or attach charts.
    #[arg(long)]
    pub no_charts: bool,

    /// Smallest p95 change that counts, overriding the suite (e.g. 10%).
    #[arg(long, value_name = "PERCENT")]
    pub tolerance: Option<String>,

    /// Fail (exit 1) when an endpoint is inconclusive.
    #[arg(long)]
    pub strict: bool,

    #[command(flatten)]
    pub load: LoadArgs,

    #[command(flatten)]
    pub db: DbArg,

    #[command(flatten)]
    pub notify: NotifyArgs,

    #[command(flatten)]
    pub paired: PairedArgs,

    /// Also write the run as a versioned JSON document to FILE (`-` for stdout); with --shard,
    /// the shard's document for `gate merge`.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Measure nothing: merge these shard documents (`gate ci --shard I/N --json FILE` in a
    /// matrix of load jobs) and go on as if this job had run the whole load: save, compare,
    /// chart, comment. A missing shard makes the run partial: saved, never a pass (exit 3).
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with = "shard")]
    pub merge: Vec<PathBuf>,

    /// Send shard I of N's share of the load (I from 1), or `k8s/N` (I from the Indexed Job's
    /// JOB_COMPLETION_INDEX). A shard writes its document (--json) for `gate merge`; it is not
    /// judged and not saved (docs/scale.md).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

/// `gate merge`: shard documents into one run (docs/scale.md).
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' documents (`gate run --shard I/N --json FILE`), one per shard.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Save the merged run to the history (as a partial run when a shard is missing).
    #[arg(long)]
    pub save: bool,

    #[command(flatten)]
    pub db: DbArg,

    /// Also write the merged run as a versioned JSON document to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// The suite whose SLO thresholds the merged run is checked against.
    #[arg(long, value_name = "DIR|FILE", default_value = "scenarios")]
    pub suite: PathBuf,

    /// A free-form label stored with the merged run (default: the first shard's).
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
}

/// `gate publish`: post a bundle written by `gate ci --bundle` from a trusted job.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The directory `gate ci --bundle DIR` wrote (e.g. a downloaded workflow artifact).
    pub bundle: PathBuf,

    /// The PR to comment on (default: the one recorded in the bundle).
    #[arg(long, value_name = "N")]
    pub pr: Option<u64>,

    /// Refuse unless the PR's head commit is SHA. In a workflow_run job pass
    /// `github.event.workflow_run.head_sha`: the bundle came from untrusted code and must not
    /// choose which PR gets the comment.
    #[arg(long, value_name = "SHA")]
    pub expect_head_sha: Option<String>,

    #[command(flatten)]
    pub github: GitHubArgs,
}

/// What to run and how hard: shared by `gate run` and `gate ci`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Scenario directory (every *.yml, with suite.yml as defaults) or a single scenario file.
    #[arg(long, value_name = "DIR|FILE", default_value = "scenarios")]
    pub suite: PathBuf,

    /// Base URL of the deployment under test; overrides `target:` in suite.yml.
    #[arg(long, value_name = "URL", env = "GATE_TARGET")]
    pub target: Option<String>,

    /// Run only the scenarios with these names (repeatable).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,

    /// Also trust the CA certificates in FILE (PEM) for https targets, as `tls: { ca: FILE }`.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// Accept any TLS certificate. Marked loudly in the output and in the run record.
    #[arg(long)]
    pub insecure: bool,

    /// Send connections for HOST:PORT to ADDR (curl's); the URL, Host header and SNI keep
    /// HOST. Repeatable; as `resolve:` in suite.yml.
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,

    /// Speak HTTP/2 from the first byte to http:// targets (h2c), as curl's flag; https
    /// targets negotiate HTTP/2 by ALPN without it.
    #[arg(long = "http2-prior-knowledge", conflicts_with = "http1_only")]
    pub http2_prior_knowledge: bool,

    /// HTTP/1.1 only, even where an https server offers HTTP/2 by ALPN (curl's flag).
    #[arg(long = "http1.1")]
    pub http1_only: bool,

    /// Override every scenario's measured duration (e.g. 5s, 1m).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Override every scenario's warmup (e.g. 0s, 2s).
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<String>,

    /// Load threads (default: one per core for a remote target, one per two cores for a target on
    /// this machine's loopback, where gate and the target share the cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Tag the environment (e.g. "staging-eu"): runs are compared only with runs of the same tag.
    #[arg(long, value_name = "TAG")]
    pub env_tag: Option<String>,
}
