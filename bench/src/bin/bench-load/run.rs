//! The measurement frame every scenario runs in: phases, shared counters, server sampling
//! and the report.
//!
//! A load run goes Setup (sessions connect; bounded by `setup_timeout`) → Warmup → Measure
//! (`duration`) → Done. Only what is received during Measure counts, and the server's CPU
//! time and the load generator's own are sampled at the edges of Measure.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use sockjs_bench::histogram::Histogram;
use sockjs_bench::procfs;
use sockjs_bench::rng::Rng;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Setup,
    Warmup,
    Measure,
    /// After Measure, for scenarios that weigh memory: sessions hold, nothing is counted.
    Settle,
    Done,
}

/// Which kind of server is at the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A SockJS server: session URLs under the prefix, SockJS framing.
    Sockjs,
    /// `bench-raw-ws` or `bench-raw-http`: plain WebSocket text, or fixed HTTP answers.
    Raw,
}

/// Settings every scenario shares.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    pub(crate) scenario: &'static str,
    pub(crate) addr: SocketAddr,
    pub(crate) target: Target,
    pub(crate) prefix: String,
    pub(crate) sessions: usize,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) setup_timeout: Duration,
    pub(crate) connect_concurrency: usize,
    pub(crate) server_pid: Option<u32>,
    pub(crate) label: String,
    pub(crate) case: String,
    pub(crate) raw_ref: Option<String>,
    /// One line describing the load, for the report.
    pub(crate) params: String,
    /// Weigh memory: the server's RSS before any session (baseline), its peak during warmup
    /// and measure, and after `settle` more seconds; the kernel's TCP memory likewise.
    pub(crate) memory: bool,
    pub(crate) settle: Duration,
}

impl Common {
    /// The URL of `transport` for a new session under the prefix.
    pub(crate) fn session_url(&self, id: &str, transport: &str) -> String {
        format!("{}/000/{id}/{transport}", self.prefix)
    }
}

/// Counters of what happened during Measure (errors are counted in every phase).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) latency: Histogram,
    pub(crate) per_session: Vec<u64>,
    pub(crate) messages: u64,
    pub(crate) errors: u64,
    pub(crate) error_samples: Vec<String>,
    pub(crate) skipped: u64,
    pub(crate) reconnects: u64,
    pub(crate) broadcasts: u64,
}

/// State shared by the driver and every session task (all on one thread).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) common: Common,
    phase: Cell<Phase>,
    phase_rx: watch::Receiver<Phase>,
    pub(crate) stats: RefCell<Stats>,
    pub(crate) rng: RefCell<Rng>,
    pub(crate) gate: Semaphore,
}

impl Shared {
    pub(crate) fn measuring(&self) -> bool {
        self.phase.get() == Phase::Measure
    }

    /// A receiver that session tasks wait on for phase changes.
    pub(crate) fn phases(&self) -> watch::Receiver<Phase> {
        self.phase_rx.clone()
    }

    /// Counts one message received by `session`, `latency` after it was sent.
    pub(crate) fn record(&self, session: usize, latency: Duration) {
        if !self.measuring() {
            return;
        }
        let mut s = self.stats.borrow_mut();
        s.latency.record(latency.as_micros() as u64);
        s.messages += 1;
        if let Some(n) = s.per_session.get_mut(session) {
            *n += 1;
        }
    }

    pub(crate) fn error(&self, text: String) {
        let mut s = self.stats.borrow_mut();
        s.errors += 1;
        if s.error_samples.len() < 5 {
            s.error_samples.push(text);
        }
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut Stats)) {
        if self.measuring() {
            f(&mut self.stats.borrow_mut());
        }
    }

    pub(crate) fn session_id(&self) -> String {
        self.rng.borrow_mut().session_id()
    }

    pub(crate) fn seed(&self) -> u64 {
        self.rng.borrow_mut().next_u64()
    }
}

/// Resolves once the run reaches `phase` (at once if it is past it).
pub(crate) async fn reached(rx: &mut watch::Receiver<Phase>, phase: Phase) {
    // An error means the driver is gone, which also means stop.
    let _ = rx.wait_for(|p| *p >= phase).await;
}

/// A session's one report that its setup finished; dropping it unreported counts as failure.
pub(crate) struct Ready(Option<mpsc::UnboundedSender<bool>>);

impl Ready {
    pub(crate) fn ok(mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(true);
        }
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(false);
        }
    }
}

/// Samples of the server and of this process at one instant.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    server_cpu: Option<f64>,
    server_rss: Option<u64>,
    client_cpu: Option<f64>,
}

fn sample(pid: Option<u32>) -> Sample {
    Sample {
        at: Instant::now(),
        server_cpu: pid.and_then(|p| procfs::cpu_seconds(p).ok()),
        server_rss: pid.and_then(|p| procfs::rss_kib(p).ok()),
        client_cpu: procfs::cpu_seconds(std::process::id()).ok(),
    }
}

/// The driver's handle on a run.
pub(crate) struct Run {
    pub(crate) shared: Rc<Shared>,
    phase_tx: watch::Sender<Phase>,
    ready_tx: mpsc::UnboundedSender<bool>,
    ready_rx: mpsc::UnboundedReceiver<bool>,
    tasks: Vec<JoinHandle<()>>,
    expected: usize,
}

impl Run {
    pub(crate) fn new(common: Common) -> Self {
        let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
        let (ready_tx, ready_rx) = mpsc::unbounded_channel();
        let stats = Stats {
            per_session: vec![0; common.sessions],
            ..Stats::default()
        };
        let gate = Semaphore::new(common.connect_concurrency);
        Run {
            shared: Rc::new(Shared {
                common,
                phase: Cell::new(Phase::Setup),
                phase_rx,
                stats: RefCell::new(stats),
                rng: RefCell::new(Rng::from_clock()),
                gate,
            }),
            phase_tx,
            ready_tx,
            ready_rx,
            tasks: Vec::new(),
            expected: 0,
        }
    }

    /// Spawns one task that must report through the [`Ready`] it is given.
    pub(crate) fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(Rc<Shared>, Ready) -> Fut,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let fut = task(self.shared.clone(), Ready(Some(self.ready_tx.clone())));
        self.tasks.push(tokio::task::spawn_local(fut));
        self.expected += 1;
    }

    fn set_phase(&self, phase: Phase) {
        self.shared.phase.set(phase);
        let _ = self.phase_tx.send(phase);
    }

    /// Waits until every spawned task reported setup (or the setup timeout); returns
    /// (ready, failed, seconds taken).
    async fn await_setup(&mut self) -> (usize, usize, f64) {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.shared.common.setup_timeout;
        let (mut ok, mut failed) = (0, 0);
        while ok + failed < self.expected {
            tokio::select! {
                got = self.ready_rx.recv() => match got {
                    Some(true) => ok += 1,
                    Some(false) => failed += 1,
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        (ok, failed, started.elapsed().as_secs_f64())
    }

    /// Ends the run: tells every task to stop and waits briefly before aborting stragglers.
    async fn finish(&mut self) {
        self.set_phase(Phase::Done);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        for task in self.tasks.drain(..) {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                abort.abort();
            }
        }
    }

    /// Runs a load scenario's phases and returns its report.
    pub(crate) async fn load(mut self, mut extra: Map<String, Value>) -> Map<String, Value> {
        let c = self.shared.common.clone();
        let baseline = sample(c.server_pid);
        let baseline_tcp = procfs::tcp_mem_kib();
        let peak = Rc::new(Cell::new(baseline.server_rss.unwrap_or(0)));
        let sampler = (c.memory && c.server_pid.is_some()).then(|| {
            let (peak, pid, phases) = (peak.clone(), c.server_pid, self.shared.phases());
            tokio::task::spawn_local(async move {
                while *phases.borrow() < Phase::Settle {
                    if let Some(rss) = pid.and_then(|p| procfs::rss_kib(p).ok()) {
                        peak.set(peak.get().max(rss));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        });
        let (ok, failed, setup_s) = self.await_setup().await;
        if failed > 0 || ok < self.expected {
            self.shared.error(format!(
                "{} of {} sessions failed to set up",
                self.expected - ok,
                self.expected
            ));
        }
        self.set_phase(Phase::Warmup);
        tokio::time::sleep(c.warmup).await;
        let before = sample(c.server_pid);
        self.set_phase(Phase::Measure);
        tokio::time::sleep(c.duration).await;
        let after = sample(c.server_pid);
        let after_tcp = procfs::tcp_mem_kib();
        let mut settled = None;
        if c.memory {
            self.set_phase(Phase::Settle);
            if let Some(s) = sampler {
                let _ = s.await;
            }
            tokio::time::sleep(c.settle).await;
            settled = Some((sample(c.server_pid), procfs::tcp_mem_kib()));
        }
        self.finish().await;

        let s = self.shared.stats.borrow();
        let secs = after.at.duration_since(before.at).as_secs_f64();
        let messages = s.messages;
        let cpu = delta(before.server_cpu, after.server_cpu);
        let client_cpu = delta(before.client_cpu, after.client_cpu);
        let mut r = base_report(&c);
        r.insert("sessions_ready".into(), json!(ok));
        r.insert("setup_s".into(), json!(round(setup_s, 3)));
        r.insert("measured_s".into(), json!(round(secs, 3)));
        r.insert("messages".into(), json!(messages));
        r.insert("throughput".into(), json!(round(messages as f64 / secs, 1)));
        for (name, q) in [("p50_us", 0.5), ("p90_us", 0.9), ("p99_us", 0.99)] {
            r.insert(name.into(), json!(s.latency.quantile(q)));
        }
        r.insert("max_us".into(), json!(s.latency.max()));
        let per = &s.per_session;
        r.insert("per_session_min".into(), json!(per.iter().min()));
        r.insert("per_session_max".into(), json!(per.iter().max()));
        r.insert("skipped".into(), json!(s.skipped));
        r.insert("reconnects".into(), json!(s.reconnects));
        r.insert("broadcasts".into(), json!(s.broadcasts));
        r.insert("errors".into(), json!(s.errors));
        r.insert("error_samples".into(), json!(s.error_samples));
        r.insert("server_cpu_s".into(), json!(cpu.map(|v| round(v, 3))));
        r.insert(
            "server_cpu_util".into(),
            json!(cpu.map(|v| round(v / secs, 3))),
        );
        r.insert(
            "cpu_us_per_msg".into(),
            json!(
                cpu.filter(|_| messages > 0)
                    .map(|v| round(v * 1e6 / messages as f64, 3))
            ),
        );
        r.insert(
            "client_cpu_util".into(),
            json!(client_cpu.map(|v| round(v / secs, 3))),
        );
        r.insert("rss_before_kib".into(), json!(before.server_rss));
        r.insert("rss_after_kib".into(), json!(after.server_rss));
        if c.memory {
            let (settled, settled_tcp) = settled.unwrap_or((after, after_tcp));
            let peak = peak.get().max(after.server_rss.unwrap_or(0));
            r.insert("rss_baseline_kib".into(), json!(baseline.server_rss));
            r.insert("rss_peak_kib".into(), json!(peak));
            r.insert("rss_settled_kib".into(), json!(settled.server_rss));
            r.insert("settle_s".into(), json!(c.settle.as_secs_f64()));
            r.insert("tcp_mem_baseline_kib".into(), json!(baseline_tcp));
            r.insert("tcp_mem_after_kib".into(), json!(after_tcp));
            r.insert("tcp_mem_settled_kib".into(), json!(settled_tcp));
            let growth =
                |v: Option<u64>| Some(round((v? as f64 - baseline.server_rss? as f64) / 1024.0, 1));
            r.insert("rss_peak_growth_mib".into(), json!(growth(Some(peak))));
            r.insert(
                "rss_settled_growth_mib".into(),
                json!(growth(settled.server_rss)),
            );
            let tcp = |v: Option<u64>| Some(round((v? as f64 - baseline_tcp? as f64) / 1024.0, 1));
            r.insert("tcp_mem_growth_mib".into(), json!(tcp(after_tcp)));
            r.insert("tcp_mem_settled_growth_mib".into(), json!(tcp(settled_tcp)));
        }
        r.append(&mut extra);
        r
    }

    /// Runs an idle scenario: opens every session, samples the server's memory before and
    /// after, then closes them all.
    pub(crate) async fn idle(mut self, settle: Duration) -> Map<String, Value> {
        let c = self.shared.common.clone();
        // The sessions were spawned but have not run yet: this is the server's baseline.
        let before = sample(c.server_pid);
        let (ok, _failed, open_s) = self.await_setup().await;
        let opened_at = sample(c.server_pid);
        if ok < self.expected {
            self.shared.error(format!(
                "{} of {} sessions failed to open",
                self.expected - ok,
                self.expected
            ));
        }
        self.set_phase(Phase::Measure);
        tokio::time::sleep(settle).await;
        let after = sample(c.server_pid);
        self.finish().await;

        let s = self.shared.stats.borrow();
        let cpu = delta(before.server_cpu, opened_at.server_cpu);
        let rss = match (before.server_rss, after.server_rss) {
            (Some(a), Some(b)) => Some(b as f64 - a as f64),
            _ => None,
        };
        let mut r = base_report(&c);
        r.insert("opened".into(), json!(ok));
        r.insert("open_s".into(), json!(round(open_s, 3)));
        r.insert(
            "opens_per_s".into(),
            json!(round(ok as f64 / open_s.max(1e-9), 1)),
        );
        r.insert(
            "cpu_us_per_open".into(),
            json!(
                cpu.filter(|_| ok > 0)
                    .map(|v| round(v * 1e6 / ok as f64, 2))
            ),
        );
        r.insert("rss_before_kib".into(), json!(before.server_rss));
        r.insert("rss_after_kib".into(), json!(after.server_rss));
        r.insert(
            "kib_per_session".into(),
            json!(rss.filter(|_| ok > 0).map(|v| round(v / ok as f64, 2))),
        );
        r.insert("errors".into(), json!(s.errors));
        r.insert("error_samples".into(), json!(s.error_samples));
        r
    }
}

fn base_report(c: &Common) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("case".into(), json!(c.case));
    r.insert("scenario".into(), json!(c.scenario));
    r.insert("server".into(), json!(c.label));
    r.insert(
        "target".into(),
        json!(match c.target {
            Target::Sockjs => "sockjs",
            Target::Raw => "raw",
        }),
    );
    r.insert("raw_ref".into(), json!(c.raw_ref));
    r.insert("params".into(), json!(c.params));
    r.insert("addr".into(), json!(c.addr.to_string()));
    r.insert("server_pid".into(), json!(c.server_pid));
    r.insert("sessions".into(), json!(c.sessions));
    r.insert("loadavg_1m".into(), json!(procfs::load_average()));
    r
}

fn delta(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(b? - a?)
}

fn round(v: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (v * scale).round() / scale
}
