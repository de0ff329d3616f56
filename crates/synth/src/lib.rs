//! A synthetic Jakarta: every agency file of `docs/formats.md`, deterministic for a seed,
//! calibrated so that the stage run of tahap I 2025 gives the real outcome.
//!
//! ```no_run
//! use kjp_synth::{generate, Options};
//! let opts = Options { scale: 0.05, seed: 7, out: "data".into() };
//! let report = generate(&opts, &|step, done, total| eprintln!("{step} {done}/{total}"))?;
//! for f in &report.files {
//!     println!("{} {} rows", f.source, f.rows);
//! }
//! # Ok::<(), kjp_synth::SynthError>(())
//! ```
//!
//! # API
//!
//! - [`generate`]`(&Options { scale, seed, out }, &progress) -> Result<Report, SynthError>`
//!   writes the 15 files into `out` (created if needed). `progress(step, done, total)` is
//!   called now and then from any thread: `("plan", 1, 1)`, then `("residents", n, total)`
//!   as kelurahan are written, then `("files", i, 15)` as files are put in place.
//! - [`Report`]: per file ([`FileReport`]: source name, path, data rows, and how many of
//!   them are planted malformed rows and duplicates), residents, families, what was
//!   planted ([`Planted`]) and what the stage run should find ([`Expected`]).
//! - [`SynthError`]: a scale outside `(0, 2]`, or an I/O error with its path.
//!
//! The files are `dukcapil, dtks, sktm, dapodik, emis, schools, transjakarta, wages, foster,
//! lurah, bapenda, samsat, njop, occupations, sanctions` (`.csv`): fourteen sources, with
//! enrolment in two files (Dapodik and EMIS). Each is written under a temporary name
//! (`.NAME.csv.partial`) and renamed when all are complete, so an interrupted run never
//! leaves a half-written `dukcapil.csv`.
//!
//! # The world
//!
//! At scale 1 Jakarta has 11,038,216 residents over its 267 kelurahan, by the real
//! populations of the regency and five cities, in families on family cards (KK) of about
//! 3.4 persons (1-2 parents, children 0-24, some grandparents and relatives; about 8% of
//! NIKs issued outside Jakarta); 2.5 million enrolled children and course students; about
//! 7,000 schools and courses (2,300 SD, 1,000 SMP, 500 SMA, 550 SMK, 80 SLB, 830 madrasahs
//! in EMIS, 400 PKBM, 1,200 LKP); 5.3 million vehicles in Bapenda and Samsat. Every
//! count scales linearly with `scale`; the same scale and seed give the same bytes,
//! whatever the number of threads.
//!
//! # Calibration
//!
//! The stage run of tahap I 2025 (reference date 2025-01-01, `policy/kjp-plus.toml`)
//! finds exactly `round(target x scale)` eligible children per level: SD/MI 338,971,
//! SMP/MTs 189,437, SMA/MA 62,295, SMK 111,315, SLB 2,908, PKBM 2,696, and 250 LKP
//! course students; the private-school shares (SD 14%, SMP 36%, SMA 57%, SMK 83%) give a
//! six-month cost of about Rp 1.62 trillion. This holds by construction: each kelurahan
//! receives a quota of eligible children per level and school status, its eligible
//! families are built from that quota, and every other family with a candidate child
//! carries a reason that fails each of them whatever group it could claim (not in DTKS,
//! no SKTM, a car, property over the NJOP limit, an excluded occupation, moved out, a
//! family card from elsewhere, a wage above 1.1 x UMP, a KTP from elsewhere, a sanction,
//! an age out of range). [`Expected`] reports the counts as built.
//!
//! # Planted
//!
//! About 0.1% malformed rows in every file (a corrupted copy right after a good row, so
//! no information is lost), 0.05% duplicate keys (exact, or with a different value in a
//! column that changes no decision, always after the original), residents who moved out
//! (`domiciled_dki=false`, empty kelurahan), about 18,000 x scale families whom Bapenda
//! still lists with a car that Samsat shows blocked or transferred before 2025 (Samsat
//! the later record for 90% of them, Bapenda for the rest), and about 0.1% of candidates
//! whose DTKS address is outside Jakarta while the civil registry domiciles them in it.

mod alloc;
pub mod bank;
mod date;
mod kel;
pub mod kjmu;
mod names;
mod out;
mod plan;
mod rng;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

use rayon::prelude::*;

use crate::kel::{Gen, Stats};
use crate::out::{Chunk, F, NFILES};
use crate::plan::Plan;
use crate::rng::Rng;

/// What to generate, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// 1.0 is the real Jakarta; more than 0, at most 2.
    pub scale: f64,
    pub seed: u64,
    /// The directory to write into (created if needed).
    pub out: PathBuf,
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// One per file, in the order of `docs/formats.md`.
    pub files: Vec<FileReport>,
    /// People in the civil registry (planted duplicates and malformed rows not counted).
    pub residents: u64,
    /// Family cards (KK).
    pub families: u64,
    pub planted: Planted,
    /// What the stage run of tahap I 2025 should find in these files.
    pub expected: Expected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The source name, e.g. `dukcapil` (the file is `dukcapil.csv`).
    pub source: &'static str,
    pub path: PathBuf,
    /// Data rows, the header not counted; planted rows included.
    pub rows: u64,
    /// Of which malformed (rejected by the formats).
    pub malformed: u64,
    /// Of which repeat the key of an earlier row.
    pub duplicates: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Planted {
    pub malformed_rows: u64,
    pub duplicate_rows: u64,
    /// Civil registry rows with `domiciled_dki=false` (and no kelurahan).
    pub moved_out: u64,
    /// Families Bapenda lists with a car that Samsat shows blocked or transferred before
    /// the reference date; each has at least one otherwise eligible candidate child.
    pub car_conflict_families: u64,
    /// Candidate children domiciled in Jakarta whose family's DTKS address is outside it.
    pub dtks_address_conflicts: u64,
}

/// What the stage run of tahap I 2025 (reference date 2025-01-01) should find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expected {
    /// Eligible children as built, in the order of
    /// [`kjp_domain::ids::REPORT_LEVELS`]: SD, SMP, SMA, SMK, SLB, PKBM, LKP.
    pub eligible: [u64; 7],
    /// The calibration targets at this scale: the real figures x scale, rounded.
    pub targets: [u64; 7],
    /// Six times the sum of the eligible children's monthly amounts, in rupiah.
    pub six_month_cost: i64,
    /// NIKs with an active enrolment row or a Lurah letter.
    pub candidates: u64,
    /// Otherwise eligible children held in review by a Bapenda/Samsat conflict.
    pub car_conflict_children: u64,
    /// Otherwise eligible children held in review by a DTKS address outside Jakarta.
    pub dtks_conflict_children: u64,
    /// Children with a Lurah letter but no enrolment yet (their level is unknown).
    pub lurah_without_enrolment: u64,
    /// Enrolled children not in the civil registry.
    pub not_in_dukcapil: u64,
    /// Otherwise eligible children under a sanction on the reference date.
    pub sanctioned: u64,
    /// Otherwise eligible children aged under 6 or over 21 on the reference date.
    pub age_out_of_range: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("scale must be more than 0 and at most 2, got {0}")]
    Scale(f64),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io { path: path.to_path_buf(), source }
}

/// Writes the synthetic Jakarta into `opts.out`. See the crate documentation.
pub fn generate(opts: &Options, progress: &(dyn Fn(&str, u64, u64) + Sync)) -> Result<Report, SynthError> {
    if !(opts.scale.is_finite() && opts.scale > 0.0 && opts.scale <= 2.0) {
        return Err(SynthError::Scale(opts.scale));
    }
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;
    let plan = Plan::new(opts.scale, opts.seed);
    progress("plan", 1, 1);

    let mut files = Files::create(&opts.out)?;
    let result = write_all(&plan, &mut files, progress);
    let (stats, counts) = match result {
        Ok(r) => r,
        Err(e) => {
            files.discard();
            return Err(e);
        }
    };
    let paths = files.commit(progress)?;

    let planted = Planted {
        malformed_rows: counts.iter().map(|c| c.1).sum(),
        duplicate_rows: counts.iter().map(|c| c.2).sum(),
        moved_out: stats.moved_out,
        car_conflict_families: stats.car_conflict_families,
        dtks_address_conflicts: stats.dtks_conflict_children,
    };
    let expected = Expected {
        eligible: stats.eligible,
        targets: plan.targets,
        six_month_cost: stats.monthly * 6,
        candidates: stats.candidates,
        car_conflict_children: stats.car_conflict_children,
        dtks_conflict_children: stats.dtks_conflict_children,
        lurah_without_enrolment: stats.lurah_only,
        not_in_dukcapil: stats.not_in_dukcapil,
        sanctioned: stats.sanctioned,
        age_out_of_range: stats.age_out,
    };
    let files = F::ALL
        .iter()
        .zip(paths)
        .zip(counts)
        .map(|((f, path), (rows, malformed, duplicates))| FileReport {
            source: f.name(),
            path,
            rows,
            malformed,
            duplicates,
        })
        .collect();
    Ok(Report { files, residents: stats.residents, families: stats.families, planted, expected })
}

/// Per file: data rows, of which malformed, of which duplicates.
type Counts = (u64, u64, u64);

/// The 15 files being written, under temporary names.
struct Files {
    dir: PathBuf,
    writers: Vec<(PathBuf, BufWriter<File>)>,
    /// The last good line written to each file, for a malformed copy if none was planted.
    last_line: Vec<Vec<u8>>,
    counts: Vec<Counts>,
}

impl Files {
    fn create(dir: &Path) -> Result<Files, SynthError> {
        let mut writers = Vec::new();
        for f in F::ALL {
            let tmp = dir.join(format!(".{}.csv.partial", f.name()));
            let file = File::create(&tmp).map_err(io(&tmp))?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            w.write_all(f.header().as_bytes()).and_then(|()| w.write_all(b"\n")).map_err(io(&tmp))?;
            writers.push((tmp, w));
        }
        Ok(Files {
            dir: dir.to_path_buf(),
            writers,
            last_line: vec![Vec::new(); NFILES],
            counts: vec![(0, 0, 0); NFILES],
        })
    }

    fn write(&mut self, chunk: &Chunk) -> Result<(), SynthError> {
        for (i, (path, w)) in self.writers.iter_mut().enumerate() {
            let buf = &chunk.buf[i];
            w.write_all(buf).map_err(io(path))?;
            if let Some(line) = last_line(buf) {
                self.last_line[i] = line.to_vec();
            }
            self.counts[i].0 += chunk.rows[i];
            self.counts[i].1 += chunk.malformed[i];
            self.counts[i].2 += chunk.duplicates[i];
        }
        Ok(())
    }

    /// Makes sure every file has at least one malformed row, however small the scale.
    fn top_up(&mut self, seed: u64) -> Result<(), SynthError> {
        let mut rng = Rng::new(seed, u64::MAX - 2);
        for f in F::ALL {
            let i = f as usize;
            if self.counts[i].1 > 0 {
                continue;
            }
            let mut c = Chunk::new(false);
            c.buf[i] = self.last_line[i].clone();
            let before = c.buf[i].len();
            c.force_malformed(f, &mut rng);
            let (path, w) = &mut self.writers[i];
            w.write_all(&c.buf[i][before..]).map_err(io(path))?;
            self.counts[i].0 += 1;
            self.counts[i].1 += 1;
        }
        Ok(())
    }

    /// Flushes and renames every file into place.
    fn commit(self, progress: &(dyn Fn(&str, u64, u64) + Sync)) -> Result<Vec<PathBuf>, SynthError> {
        let mut done = Vec::new();
        let mut pending = Vec::new();
        for (tmp, w) in self.writers {
            let file =
                w.into_inner().map_err(|e| SynthError::Io { path: tmp.clone(), source: e.into_error() })?;
            drop(file);
            pending.push(tmp);
        }
        for (i, (f, tmp)) in F::ALL.iter().zip(&pending).enumerate() {
            let path = self.dir.join(format!("{}.csv", f.name()));
            if let Err(e) = std::fs::rename(tmp, &path) {
                for t in &pending[i..] {
                    let _ = std::fs::remove_file(t);
                }
                return Err(SynthError::Io { path, source: e });
            }
            progress("files", i as u64 + 1, NFILES as u64);
            done.push(path);
        }
        Ok(done)
    }

    fn discard(self) {
        for (tmp, w) in self.writers {
            drop(w);
            let _ = std::fs::remove_file(tmp);
        }
    }
}

fn last_line(buf: &[u8]) -> Option<&[u8]> {
    if buf.is_empty() {
        return None;
    }
    let end = buf.len() - 1;
    let start = buf[..end].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    Some(&buf[start..])
}

/// Generates the kelurahan on rayon's threads, in order of index, while this thread
/// writes them in that same order. At most `window` kelurahan are in memory at once.
fn write_all(
    plan: &Plan,
    files: &mut Files,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<(Stats, Vec<Counts>), SynthError> {
    files.write(&plan.write_schools())?;
    let n = plan.kels.len();
    let total_people: u64 = plan.kels.iter().map(|k| k.pop).sum();
    let threads = rayon::current_num_threads().max(1);
    let window = 2 * threads + 2;
    let next = AtomicUsize::new(0);
    let written = Mutex::new(0usize);
    let advanced = Condvar::new();
    let abort = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, Chunk, Stats)>();
    let mut stats = Stats::default();
    let mut outcome = Ok(());

    std::thread::scope(|s| {
        let workers = s.spawn(|| {
            (0..threads).into_par_iter().for_each_with(tx, |tx, _| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= n {
                    return;
                }
                {
                    let mut w = written.lock().unwrap_or_else(|e| e.into_inner());
                    while k >= *w + window && !abort.load(Ordering::SeqCst) {
                        w = advanced.wait(w).unwrap_or_else(|e| e.into_inner());
                    }
                }
                if abort.load(Ordering::SeqCst) {
                    return;
                }
                let (chunk, st) = Gen::new(plan, k).run();
                if tx.send((k, chunk, st)).is_err() {
                    return;
                }
            });
        });
        let mut held: std::collections::BTreeMap<usize, (Chunk, Stats)> = Default::default();
        let mut at = 0;
        let mut people = 0;
        for (k, chunk, st) in rx.iter() {
            held.insert(k, (chunk, st));
            while let Some((chunk, st)) = held.remove(&at) {
                if outcome.is_ok() {
                    outcome = files.write(&chunk);
                    if outcome.is_err() {
                        abort.store(true, Ordering::SeqCst);
                    }
                }
                people += plan.kels[at].pop;
                stats.add(&st);
                at += 1;
                *written.lock().unwrap_or_else(|e| e.into_inner()) = at;
                advanced.notify_all();
                progress("residents", people, total_people);
            }
        }
        workers.join().expect("a kelurahan generator panicked");
    });
    outcome?;
    files.top_up(plan.seed)?;
    Ok((stats, files.counts.clone()))
}
