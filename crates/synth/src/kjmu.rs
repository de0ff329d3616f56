//! KJMU's students for the synthetic Jakarta: `pddikti.csv`, `graduates.csv` and
//! `scholarships.csv`, drawn from the residents `generate` wrote, and calibrated so that
//! the KJMU stage run of tahap I 2025 (`policy/kjmu.toml`, reference date 2025-01-01)
//! finds exactly `round(15,649 x scale)` eligible students (tahap I 2024's count).
//!
//! Students are young adults (18 to 24) of Jakarta families, not enrolled at a school.
//! The eligible ones are in DTKS, hold a Jakarta KTP, graduated from a Jakarta SMA or SMK
//! at most three years before, study at a state university through a regular track (or
//! at an A/Unggul private one in a priority field) in semester 1 to 4 with a GPA of at
//! least 3.00. About 40% more fail exactly one rule each, so the summary shows every
//! reason: a low GPA, too late a semester, another scholarship, a private university
//! outside the priority list, a school outside Jakarta, graduation too long ago, a family
//! outside DTKS, already graduated, on leave, a KTP from elsewhere.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use crate::rng::splitmix64;
use crate::{io, FileReport, SynthError};

/// Eligible KJMU students at scale 1 (tahap I 2024, 15,649 recipients).
pub const TARGET: u64 = 15_649;

/// Why a generated student is not eligible; each fails exactly that rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Eligible,
    GpaLow,
    LateSemester,
    OtherScholarship,
    PrivateNotUnggul,
    NotJakartaGraduate,
    GraduatedLongAgo,
    NotInDtks,
    Graduated,
    OnLeave,
    KtpNotDki,
}

/// Of the eligible count, in percent, how many fail each rule.
const MIX: [(Kind, u64); 10] = [
    (Kind::GpaLow, 6),
    (Kind::LateSemester, 5),
    (Kind::OtherScholarship, 4),
    (Kind::PrivateNotUnggul, 5),
    (Kind::NotJakartaGraduate, 4),
    (Kind::GraduatedLongAgo, 4),
    (Kind::NotInDtks, 6),
    (Kind::Graduated, 2),
    (Kind::OnLeave, 2),
    (Kind::KtpNotDki, 2),
];

const STATE: [&str; 6] = [
    "Universitas Indonesia",
    "Universitas Negeri Jakarta",
    "UIN Syarif Hidayatullah Jakarta",
    "Politeknik Negeri Jakarta",
    "UPN Veteran Jakarta",
    "Politeknik Negeri Media Kreatif",
];
const PRIVATE: [&str; 5] = [
    "Universitas Trisakti",
    "Universitas Tarumanagara",
    "Universitas Bina Nusantara",
    "Universitas Katolik Indonesia Atma Jaya",
    "Universitas Muhammadiyah Jakarta",
];
const PROGRAMMES: [&str; 8] = [
    "Teknik Informatika",
    "Pendidikan Matematika",
    "Keperawatan",
    "Akuntansi",
    "Teknik Sipil",
    "Kedokteran",
    "Ilmu Komunikasi",
    "Teknik Elektro",
];

/// What the KJMU files hold.
#[derive(Debug, Clone)]
pub struct KjmuReport {
    pub files: Vec<FileReport>,
    /// Students the stage run should find eligible.
    pub eligible: u64,
    pub students: u64,
}

#[derive(Debug)]
struct Resident {
    nik: String,
    ktp_dki: bool,
    in_dtks: bool,
}

fn mix(seed: u64, nik: &str) -> u64 {
    let mut x = seed
        ^ nik.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    splitmix64(&mut x)
}

fn lines(path: &Path) -> Result<impl Iterator<Item = String>, SynthError> {
    let f = File::open(path).map_err(io(path))?;
    Ok(BufReader::with_capacity(1 << 20, f).lines().skip(1).map_while(Result::ok))
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// Writes the KJMU files into `dir`, next to the files `generate` wrote there.
pub fn generate(dir: &Path, scale: f64, seed: u64) -> Result<KjmuReport, SynthError> {
    if !(scale.is_finite() && scale > 0.0 && scale <= 2.0) {
        return Err(SynthError::Scale(scale));
    }
    let eligible = (TARGET as f64 * scale).round() as u64;
    // Who is at school (not a university student), in DTKS, or in a care home.
    let mut enrolled: HashSet<String> = HashSet::new();
    for name in ["dapodik.csv", "emis.csv", "foster.csv"] {
        for l in lines(&dir.join(name))? {
            if let Some(nik) = l.split(',').next() {
                enrolled.insert(nik.to_string());
            }
        }
    }
    let mut dtks_nik: HashSet<String> = HashSet::new();
    let mut dtks_kk: HashSet<String> = HashSet::new();
    for l in lines(&dir.join("dtks.csv"))? {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() == 5 && digits(f[0], 16) && digits(f[1], 16) {
            dtks_nik.insert(f[0].to_string());
            dtks_kk.insert(f[1].to_string());
        }
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut residents: Vec<Resident> = Vec::new();
    for l in lines(&dir.join("dukcapil.csv"))? {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() != 9 || !digits(f[0], 16) || !seen.insert(f[0].to_string()) {
            continue;
        }
        let (nik, kk, birth) = (f[0], f[1], f[4]);
        let year: i32 = birth.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0);
        // 18 to 24 on the reference date, a child on a Jakarta card, living in Jakarta.
        if !(2001..=2006).contains(&year)
            || f[8] != "anak"
            || !kk.starts_with("31")
            || !digits(kk, 16)
            || f[7] != "true"
            || f[5].is_empty()
            || enrolled.contains(nik)
        {
            continue;
        }
        residents.push(Resident {
            nik: nik.to_string(),
            ktp_dki: f[6] == "true",
            in_dtks: dtks_nik.contains(nik) || dtks_kk.contains(kk),
        });
    }
    residents.sort_by_key(|r| (mix(seed, &r.nik), r.nik.clone()));
    let mut pools: [Vec<&Resident>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for r in &residents {
        let pool = match (r.in_dtks, r.ktp_dki) {
            (true, true) => 0,
            (false, true) => 1,
            (true, false) => 2,
            (false, false) => continue,
        };
        pools[pool].push(r);
    }
    let mut plan: Vec<(Kind, &Resident)> = Vec::new();
    let mut take = |pool: usize, n: u64, kind: Kind| {
        let n = (n as usize).min(pools[pool].len());
        plan.extend(pools[pool].drain(..n).map(|r| (kind, r)));
    };
    take(0, eligible, Kind::Eligible);
    for (kind, pct) in MIX {
        let n = (eligible * pct).div_ceil(100);
        let pool = match kind {
            Kind::NotInDtks => 1,
            Kind::KtpNotDki => 2,
            _ => 0,
        };
        take(pool, n, kind);
    }
    plan.sort_by(|a, b| a.1.nik.cmp(&b.1.nik));

    let mut schools: Vec<String> = Vec::new();
    let mut npsns: HashSet<String> = HashSet::new();
    for l in lines(&dir.join("schools.csv"))? {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() == 5 && digits(f[0], 8) {
            npsns.insert(f[0].to_string());
            if matches!(f[2], "SMA" | "SMK") {
                schools.push(f[0].to_string());
            }
        }
    }
    schools.sort();
    schools.dedup();
    if schools.is_empty() {
        schools.push("20100001".into());
    }
    // A school outside Jakarta: an NPSN the Jakarta list does not have.
    let outside: String =
        (20_200_000u32..).map(|n| n.to_string()).find(|n| !npsns.contains(n)).expect("a free NPSN");

    let mut pddikti = Vec::with_capacity(plan.len());
    let mut graduates = Vec::with_capacity(plan.len());
    let mut scholarships = Vec::new();
    let mut count = 0u64;
    for (kind, r) in &plan {
        let mut x = mix(seed ^ 0x4b4a_4d55, &r.nik);
        let mut next = || splitmix64(&mut x);
        // Graduation and semester: a year after finishing school is semester 1 or 2 ...
        let (grad_year, semester) = match kind {
            Kind::LateSemester => (2022, 5),
            Kind::GraduatedLongAgo => (2020, 3),
            // The GPA is tested from semester 2.
            Kind::GpaLow => (2023, 3),
            _ => {
                if next() % 2 == 0 {
                    (2024, 1)
                } else {
                    (2023, 3)
                }
            }
        };
        let gpa = match (kind, semester) {
            (_, 1) => String::new(),
            (Kind::GpaLow, _) => format!("2.{:02}", 40 + next() % 59),
            _ => format!("3.{:02}", next() % 90),
        };
        let level = match next() % 20 {
            0..=2 => "D3",
            3 => "D4",
            _ => "S1",
        };
        let programme = PROGRAMMES[(next() % PROGRAMMES.len() as u64) as usize];
        let private_unggul = *kind != Kind::PrivateNotUnggul && next() % 10 == 0;
        let (university, status, uacc, pacc, priority) = match kind {
            Kind::PrivateNotUnggul => (PRIVATE[(next() % 5) as usize], "swasta", "B", "B", "false"),
            _ if private_unggul => (PRIVATE[(next() % 5) as usize], "swasta", "Unggul", "A", "true"),
            _ => (STATE[(next() % STATE.len() as u64) as usize], "negeri", "Unggul", "A", "false"),
        };
        let student_status = match kind {
            Kind::Graduated => "graduated",
            Kind::OnLeave => "on_leave",
            _ => "active",
        };
        pddikti.push(format!(
            "{},{university},{status},{uacc},{programme},{level},{pacc},{priority},regular,{semester},{gpa},{student_status}",
            r.nik
        ));
        let npsn = if *kind == Kind::NotJakartaGraduate {
            outside.clone()
        } else {
            schools[(next() % schools.len() as u64) as usize].clone()
        };
        graduates.push(format!("{},{npsn},{grad_year}", r.nik));
        if *kind == Kind::OtherScholarship {
            scholarships.push(format!("{},apbn,KIP Kuliah,2023-08-01,", r.nik));
        }
        count += u64::from(*kind == Kind::Eligible);
    }

    let mut files = Vec::new();
    for (name, header, rows) in [
        (
            "pddikti",
            "nik,university,university_status,university_accreditation,programme,level,programme_accreditation,priority_field,admission,semester,gpa,status",
            &pddikti,
        ),
        ("graduates", "nik,npsn,graduation_year", &graduates),
        ("scholarships", "nik,funder,name,from,to", &scholarships),
    ] {
        let path = dir.join(format!("{name}.csv"));
        let tmp = dir.join(format!(".{name}.csv.partial"));
        let mut w = BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
        writeln!(w, "{header}").map_err(io(&tmp))?;
        for row in rows.iter() {
            writeln!(w, "{row}").map_err(io(&tmp))?;
        }
        w.into_inner().map_err(|e| e.into_error()).and_then(|f| f.sync_all()).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        files.push(FileReport { source: name, path, rows: rows.len() as u64, malformed: 0, duplicates: 0 });
    }
    Ok(KjmuReport { files, eligible: count, students: plan.len() as u64 })
}
