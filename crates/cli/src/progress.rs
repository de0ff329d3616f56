//! Progress on long steps: bars on a terminal, a plain line per step otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// Reports `(step, done, total)`; thread-safe, so parallel work can call it.
#[derive(Debug)]
pub struct Reporter {
    prefix: String,
    terminal: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    bars: HashMap<String, ProgressBar>,
    started: HashMap<String, Instant>,
}

impl Reporter {
    pub fn new(prefix: &str) -> Reporter {
        Reporter { prefix: prefix.into(), terminal: std::io::stderr().is_terminal(), state: Mutex::default() }
    }

    pub fn report(&self, step: &str, done: u64, total: u64) {
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
