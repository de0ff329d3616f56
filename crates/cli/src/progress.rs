//! Progress on long steps: bars on a terminal, a plain line per step otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use kjp_store::Store;

/// Reports `(step, done, total)`; thread-safe, so parallel work can call it.
#[derive(Debug)]
pub struct Reporter {
    prefix: String,
    terminal: bool,
    state: Mutex<State>,
    /// The last `(step, done, total)` reported, for [`Reporter::publish`].
    latest: Arc<Mutex<Option<(String, u64, u64)>>>,
}

#[derive(Debug, Default)]
struct State {
    bars: HashMap<String, ProgressBar>,
    started: HashMap<String, Instant>,
}

impl Reporter {
    pub fn new(prefix: &str) -> Reporter {
        Reporter {
            prefix: prefix.into(),
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::default(),
            latest: Arc::default(),
        }
    }

    pub fn report(&self, step: &str, done: u64, total: u64) {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some((step.to_string(), done, total));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let first = !state.started.contains_key(step);
        let started = *state.started.entry(step.to_string()).or_insert_with(Instant::now);
        if self.terminal {
            let bar = state.bars.entry(step.to_string()).or_insert_with(|| {
                let bar = ProgressBar::new(total.max(1));
                bar.set_style(
                    ProgressStyle::with_template("{prefix} {msg:<28} [{bar:30}] {pos}/{len} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_prefix(self.prefix.clone());
                bar.set_message(step.to_string());
                bar
            });
            bar.set_length(total.max(1));
            bar.set_position(done);
            if done >= total {
                bar.finish();
            }
        } else if first || done >= total {
            let secs = started.elapsed().as_secs_f64();
            if done >= total && !first {
                eprintln!("{}: {step}: done ({total}) in {secs:.1} s", self.prefix);
            } else if done >= total {
                eprintln!("{}: {step}: done ({total})", self.prefix);
            } else {
                eprintln!("{}: {step}: {done}/{total}", self.prefix);
            }
        }
    }

    /// The reporter as the callback the libraries take.
    pub fn callback(&self) -> impl Fn(&str, u64, u64) + Sync + '_ {
        move |step, done, total| self.report(step, done, total)
    }
}

impl Reporter {
    /// Writes where the run of `stage` is to the database once a second, so that every
    /// server's `/metrics` shows it (`kjp_stage_run_*`), until [`Published::finish`]. The
    /// progress is for operators: failing to write it does not stop the run.
    pub async fn publish(&self, store: &Store, stage: &str) -> Published {
        if let Err(e) = store.set_stage_progress(stage, "start", 0, 0, true, false).await {
            eprintln!("{}: progress not published for the servers' metrics: {e}", self.prefix);
        }
        let (latest, task_store, task_stage) = (self.latest.clone(), store.clone(), stage.to_string());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = latest.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if let Some((step, done, total)) = now {
                    let _ =
                        task_store.set_stage_progress(&task_stage, &step, done, total, false, false).await;
                }
            }
        });
        Published { task, store: store.clone(), stage: stage.to_string(), latest: self.latest.clone() }
    }
}

/// A run whose progress is being written to the database; see [`Reporter::publish`].
#[derive(Debug)]
pub struct Published {
    task: tokio::task::JoinHandle<()>,
    store: Store,
    stage: String,
    latest: Arc<Mutex<Option<(String, u64, u64)>>>,
}

impl Published {
    /// Stops writing and records the run as ended, at the step it reached (whether it
    /// succeeded or failed).
    pub async fn finish(self) {
        self.task.abort();
        let last = self.latest.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (step, done, total) = last.unwrap_or_else(|| ("start".into(), 0, 0));
        if let Err(e) = self.store.set_stage_progress(&self.stage, &step, done, total, false, true).await {
            eprintln!("progress not published for the servers' metrics: {e}");
        }
    }
}
