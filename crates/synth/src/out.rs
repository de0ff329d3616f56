//! Row buffers for the agency files, and the planting of what real files have: malformed
//! rows and duplicate keys.
//!
//! Every kelurahan writes into its own [`Chunk`]; the chunks are concatenated in kelurahan
//! order, so the files do not depend on thread scheduling.
//!
//! A malformed row is a corrupted copy of the row just written, placed right after it: a
//! bad row is left out by the importer and the good original is kept, so planting never
//! takes information away from the stage run. A duplicate repeats the key of an earlier
//! row, exactly or with a different value in a column that does not change any decision,
//! and is placed at the end of the kelurahan's rows, after its original.

use crate::alloc::{push_padded, push_u64, Plate};
use crate::date::Day;
use crate::names::SANCTIONS;
use crate::rng::Rng;

/// The agency files, in the order of `docs/formats.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum F {
    Dukcapil,
    Dtks,
    Sktm,
    Dapodik,
    Emis,
    Schools,
    Transjakarta,
    Wages,
    Foster,
    Lurah,
    Bapenda,
    Samsat,
    Njop,
    Occupations,
    Sanctions,
}

pub(crate) const NFILES: usize = 15;

impl F {
    pub(crate) const ALL: [F; NFILES] = [
        F::Dukcapil,
        F::Dtks,
        F::Sktm,
        F::Dapodik,
        F::Emis,
        F::Schools,
        F::Transjakarta,
        F::Wages,
        F::Foster,
        F::Lurah,
        F::Bapenda,
        F::Samsat,
        F::Njop,
        F::Occupations,
        F::Sanctions,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            F::Dukcapil => "dukcapil",
            F::Dtks => "dtks",
            F::Sktm => "sktm",
            F::Dapodik => "dapodik",
            F::Emis => "emis",
            F::Schools => "schools",
            F::Transjakarta => "transjakarta",
            F::Wages => "wages",
            F::Foster => "foster",
            F::Lurah => "lurah",
            F::Bapenda => "bapenda",
            F::Samsat => "samsat",
            F::Njop => "njop",
            F::Occupations => "occupations",
            F::Sanctions => "sanctions",
        }
    }

    /// The header row, exactly as documented.
    pub(crate) fn header(self) -> &'static str {
        match self {
            F::Dukcapil => "nik,kk,name,sex,birth_date,kelurahan,ktp_dki,domiciled_dki,relationship",
            F::Dtks => "nik,kk,decile,listed_since,region",
            F::Sktm => "nik,number,issued,valid_until",
            F::Dapodik | F::Emis => "nik,nisn,npsn,level,grade,active",
            F::Schools => "npsn,name,level,status,kelurahan",
            F::Transjakarta => "nik,kk,vehicle_class,active",
            F::Wages => "nik,kk,ktp_dki,monthly_wage,period",
            F::Foster => "nik,care_home,since",
            F::Lurah => "nik,kelurahan,letter_number,issued",
            F::Bapenda => "owner_nik,plate,vehicle_kind,as_of",
            F::Samsat => "plate,owner_nik,status,status_date",
            F::Njop => "kk,njop,as_of",
            F::Occupations => "nik,kk,occupation,as_of",
            F::Sanctions => "nik,npsn,category,since,lifted",
        }
    }

    pub(crate) fn columns(self) -> usize {
        self.header().split(',').count()
    }

    /// Agencies spell yes/no differently; every spelling is one the formats accept.
    fn yes_no(self, v: bool) -> &'static [u8] {
        match (self, v) {
            (F::Dapodik | F::Emis, true) => b"1",
            (F::Dapodik | F::Emis, false) => b"0",
            (F::Transjakarta, true) => b"Y",
            (F::Transjakarta, false) => b"N",
            (_, true) => b"true",
            (_, false) => b"false",
        }
    }
}

/// How often rows are planted: about 0.1% malformed, 0.05% duplicate keys.
const MALFORMED_RATE: f64 = 0.001;
const DUPLICATE_RATE: f64 = 0.0005;

/// The rows of one kelurahan (or of the school list) for every file.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) buf: Vec<Vec<u8>>,
    pub(crate) rows: [u64; NFILES],
    pub(crate) malformed: [u64; NFILES],
    pub(crate) duplicates: [u64; NFILES],
    pending: Vec<(usize, Vec<u8>)>,
    file: F,
    start: usize,
    marks: [usize; 10],
    nf: usize,
    plant: bool,
}

impl Chunk {
    pub(crate) fn new(plant: bool) -> Chunk {
        Chunk {
            buf: vec![Vec::new(); NFILES],
            rows: [0; NFILES],
            malformed: [0; NFILES],
            duplicates: [0; NFILES],
            pending: Vec::new(),
            file: F::Dukcapil,
            start: 0,
            marks: [0; 10],
            nf: 0,
            plant,
        }
    }

    fn out(&mut self) -> &mut Vec<u8> {
        &mut self.buf[self.file as usize]
    }

    pub(crate) fn begin(&mut self, f: F) -> &mut Chunk {
        self.file = f;
        self.start = self.buf[f as usize].len();
        self.nf = 0;
        self
    }

    fn sep(&mut self) {
        let len = self.buf[self.file as usize].len();
        if self.nf > 0 {
            self.buf[self.file as usize].push(b',');
        }
        self.marks[self.nf] = len + usize::from(self.nf > 0) - self.start;
        self.nf += 1;
    }

    pub(crate) fn id16(&mut self, n: u64) -> &mut Chunk {
        self.sep();
        push_padded(self.out(), n, 16);
        self
    }

    pub(crate) fn padded(&mut self, n: u64, width: usize) -> &mut Chunk {
        self.sep();
        push_padded(self.out(), n, width);
        self
    }

    pub(crate) fn num(&mut self, n: u64) -> &mut Chunk {
        self.sep();
        push_u64(self.out(), n);
        self
    }

    pub(crate) fn date(&mut self, d: Day) -> &mut Chunk {
        self.sep();
        d.write(self.out());
        self
    }

    pub(crate) fn opt_date(&mut self, d: Option<Day>) -> &mut Chunk {
        self.sep();
        if let Some(d) = d {
            d.write(self.out());
        }
        self
    }

    pub(crate) fn month(&mut self, d: Day) -> &mut Chunk {
        self.sep();
        d.write_month(self.out());
        self
    }

    /// A field known not to need quoting.
    pub(crate) fn raw(&mut self, s: &[u8]) -> &mut Chunk {
        self.sep();
        self.out().extend_from_slice(s);
        self
    }

    /// A text field, quoted (RFC 4180) when it holds a comma or a quote.
    pub(crate) fn text(&mut self, s: &str) -> &mut Chunk {
        self.sep();
        let out = self.out();
        if s.bytes().any(|b| b == b',' || b == b'"') {
            out.push(b'"');
            for b in s.bytes() {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(s.as_bytes());
        }
        self
    }

    /// A text field built in place; `f` must not write commas, quotes or newlines unless
    /// `quoted` is set.
    pub(crate) fn with(&mut self, quoted: bool, f: impl FnOnce(&mut Vec<u8>)) -> &mut Chunk {
        self.sep();
        let out = self.out();
        if quoted {
            out.push(b'"');
        }
        f(out);
        if quoted {
            out.push(b'"');
        }
        self
    }

    pub(crate) fn yes_no(&mut self, v: bool) -> &mut Chunk {
        let s = self.file.yes_no(v);
        self.raw(s)
    }

    pub(crate) fn plate(&mut self, p: Plate) -> &mut Chunk {
        self.sep();
        p.write(self.out());
        self
    }

    /// Ends the row, and now and then plants a malformed copy or a duplicate of it.
    pub(crate) fn end(&mut self, rng: &mut Rng) {
        let f = self.file;
        debug_assert_eq!(self.nf, f.columns(), "{}", f.name());
        self.out().push(b'\n');
        self.rows[f as usize] += 1;
        if !self.plant {
            return;
        }
        let x = rng.f64();
        if x < MALFORMED_RATE {
            let bad = self.corrupt(rng);
            self.buf[f as usize].extend_from_slice(&bad);
            self.rows[f as usize] += 1;
            self.malformed[f as usize] += 1;
        } else if x < MALFORMED_RATE + DUPLICATE_RATE {
            let row = if rng.chance(0.5) { self.last_row().concat_row() } else { self.conflicting(rng) };
            self.pending.push((f as usize, row));
        }
    }

    /// Moves the planted duplicates to the end of their files. Call once, at the end.
    pub(crate) fn finish(&mut self) {
        for (f, row) in std::mem::take(&mut self.pending) {
            self.buf[f].extend_from_slice(&row);
            self.rows[f] += 1;
            self.duplicates[f] += 1;
        }
    }

    /// Appends one malformed row to `f` (a corrupted copy of its last row, or a row with
    /// the wrong number of fields if the file has none yet).
    pub(crate) fn force_malformed(&mut self, f: F, rng: &mut Rng) {
        let buf = &self.buf[f as usize];
        let row = if buf.is_empty() {
            b"0000000000000000\n".to_vec()
        } else {
            let end = buf.len() - 1;
            let start = buf[..end].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            let line = buf[start..end].to_vec();
            // Re-derive the field marks of that line (quoted commas are not separators).
            self.file = f;
            self.start = start;
            self.nf = 0;
            let mut quoted = false;
            self.marks[0] = 0;
            self.nf = 1;
            for (i, &b) in line.iter().enumerate() {
                if b == b'"' {
                    quoted = !quoted;
                } else if b == b',' && !quoted && self.nf < self.marks.len() {
                    self.marks[self.nf] = i + 1;
                    self.nf += 1;
                }
            }
            self.corrupt(rng)
        };
        self.buf[f as usize].extend_from_slice(&row);
        self.rows[f as usize] += 1;
        self.malformed[f as usize] += 1;
    }

    fn last_row(&self) -> Fields {
        let buf = &self.buf[self.file as usize];
        let line = &buf[self.start..buf.len() - 1];
        let mut fields = Vec::with_capacity(self.nf);
        for i in 0..self.nf {
            let from = self.marks[i];
            let to = if i + 1 < self.nf { self.marks[i + 1] - 1 } else { line.len() };
            fields.push(line[from..to].to_vec());
        }
        Fields(fields)
    }

    /// A copy of the last row with a different value in a column that changes no decision.
    fn conflicting(&self, rng: &mut Rng) -> Vec<u8> {
        let mut r = self.last_row();
        match self.file {
            F::Dukcapil | F::Schools => {
                r.0[if self.file == F::Dukcapil { 2 } else { 1 }].make_ascii_uppercase()
            }
            F::Dtks => {
                let d = parse_num(&r.0[2]).unwrap_or(1);
                r.0[2] = (if d > 1 { d - 1 } else { d + 1 }).to_string().into_bytes();
            }
            F::Sktm => r.shift_date(2, -rng.range(1, 60) as i32),
            F::Dapodik | F::Emis => {
                let g = parse_num(&r.0[4]).unwrap_or(1);
                r.0[4] = (if g > 1 { g - 1 } else { g + 1 }).to_string().into_bytes();
            }
            F::Wages => {
                let m = r.0[4].clone();
                r.0[4] = if m.ends_with(b"-01") { b"2024-10".to_vec() } else { b"2024-09".to_vec() };
            }
            F::Foster => r.shift_date(2, -rng.range(30, 400) as i32),
            F::Lurah => r.shift_date(3, -rng.range(1, 20) as i32),
            F::Bapenda => r.shift_date(3, -365),
            F::Njop => {
                let v = parse_num(&r.0[1]).unwrap_or(0);
                let v = if v > 1_000_000_000 { v + v / 20 } else { v - v / 20 };
                r.0[1] = (v / 1000 * 1000).to_string().into_bytes();
            }
            F::Occupations => r.shift_date(3, -rng.range(30, 700) as i32),
            F::Sanctions => r.0[2] = rng.pick(SANCTIONS).as_bytes().to_vec(),
            // A driver's flags or a Samsat status decide cases: repeat those exactly.
            F::Transjakarta | F::Samsat => {}
        }
        r.concat_row()
    }

    /// A corrupted copy of the last row that the formats reject.
    fn corrupt(&self, rng: &mut Rng) -> Vec<u8> {
        use Bad::*;
        let mut r = self.last_row();
        let options: &[Bad] = match self.file {
            F::Dukcapil => &[Nik(0), Kk(1), Sex(3), Date(4), Kel(5), Bool(6), Fewer, More],
            F::Dtks => &[Nik(0), Kk(1), Decile(2), Date(3), Region(4), Fewer],
            F::Sktm => &[Nik(0), Date(2), Date(3), Reversed(3, 2), Fewer],
            F::Dapodik | F::Emis => &[Nik(0), Nisn(1), Npsn(2), Level(3), Grade(4), Bool(5), Fewer],
            F::Schools => &[Npsn(0), Level(2), Word(3, &["partikelir", "N/A"]), Kel(4), Fewer],
            F::Transjakarta => &[Nik(0), Kk(1), Word(2, &["angkot", "bus kecil", "mikrotrans"]), Bool(3)],
            F::Wages => &[Nik(0), Kk(1), Bool(2), Money(3), Money(3), Month(4), Fewer],
            F::Foster => &[Nik(0), Date(2), Fewer],
            F::Lurah => &[Nik(0), Kel(1), Date(3), Fewer],
            F::Bapenda => &[Nik(0), Word(2, &["roda3", "mobil", "R4"]), Date(3), Fewer],
            F::Samsat => &[Nik(1), Word(2, &["stolen", "aktif", "diblokir"]), Date(3), Fewer],
            F::Njop => &[Kk(0), Money(1), Date(2), Fewer],
            F::Occupations => &[Nik(0), Kk(1), Word(2, &["guru", "honorer", "swasta"]), Date(3)],
            F::Sanctions => &[Nik(0), Npsn(1), Date(3), Reversed(4, 3), Fewer],
        };
        let bad = *rng.pick(options);
        let pick = |rng: &mut Rng, xs: &[&str]| rng.pick(xs).as_bytes().to_vec();
        match bad {
            Nik(i) | Kk(i) => {
                let v = &mut r.0[i];
                if v.len() == 16 {
                    match rng.below(if matches!(bad, Nik(_)) { 5 } else { 2 }) {
                        0 => v[3 + rng.below(9) as usize] = b'O',
                        1 => {
                            v.pop();
                        }
                        2 => v[6..8].copy_from_slice(b"35"),
                        3 => v[8..10].copy_from_slice(b"13"),
                        _ => v[12..16].copy_from_slice(b"0000"),
                    }
                } else {
                    v.push(b'x');
                }
            }
            Sex(i) => r.0[i] = pick(rng, &["X", "Laki-laki", "W"]),
            Date(i) => {
                let v = &r.0[i];
                let year = if v.len() >= 4 { v[..4].to_vec() } else { b"2024".to_vec() };
                r.0[i] = match rng.below(3) {
                    0 => [year.as_slice(), b"-02-30"].concat(),
                    1 => [year.as_slice(), b"-13-01"].concat(),
                    _ if v.len() == 10 => [&v[8..10], b"-", &v[5..7], b"-", &v[..4]].concat(),
                    _ => b"31/12/2024".to_vec(),
                };
            }
            Kel(i) => {
                let v = &r.0[i];
                r.0[i] = if v.len() >= 9 { [&v[..9], b"9999"].concat() } else { b"Bekasi".to_vec() };
            }
            Bool(i) => r.0[i] = pick(rng, &["ya", "tidak", "-"]),
            Decile(i) => r.0[i] = pick(rng, &["0", "11", "D3"]),
            Region(i) => r.0[i] = pick(rng, &["31.7", "Jakarta Utara", "317"]),
            Nisn(i) => {
                r.0[i].pop();
            }
            Npsn(i) => r.0[i] = pick(rng, &["2010012", "P9970123", "201000I2"]),
            Level(i) => r.0[i] = pick(rng, &["TK", "PAUD", "SLB", "Paket C"]),
            Grade(i) => r.0[i] = pick(rng, &["0", "14", "VII"]),
            Money(i) => {
                let v = r.0[i].clone();
                r.0[i] = match rng.below(3) {
                    0 => [b"-".as_slice(), &v].concat(),
                    1 => dotted_thousands(&v),
                    _ => [b"Rp ".as_slice(), &v].concat(),
                };
            }
            Month(i) => r.0[i] = pick(rng, &["2024-13", "11/2024", "Nov 2024"]),
            Word(i, words) => r.0[i] = pick(rng, words),
            Reversed(later, earlier) => {
                // `later` becomes a date before `earlier`.
                let e = r.0[earlier].clone();
                r.0[later] = e;
                r.shift_date(later, -rng.range(10, 90) as i32);
            }
            Fewer => {
                r.0.pop();
            }
            More => {
                let name = &mut r.0[2];
                if name.first() == Some(&b'"') {
                    // An unquoted name with a title: the comma splits it into two fields.
                    name.retain(|&b| b != b'"');
                } else {
                    r.0.push(b"1".to_vec());
                }
            }
        }
        r.concat_row()
    }
}

#[derive(Debug, Clone, Copy)]
enum Bad {
    Nik(usize),
    Kk(usize),
    Sex(usize),
    Date(usize),
    Kel(usize),
    Bool(usize),
    Decile(usize),
    Region(usize),
    Nisn(usize),
    Npsn(usize),
    Level(usize),
    Grade(usize),
    Money(usize),
    Month(usize),
    Word(usize, &'static [&'static str]),
    /// The first column's date goes before the second's (valid_until before issued,
    /// lifted before since).
    Reversed(usize, usize),
    Fewer,
    More,
}

struct Fields(Vec<Vec<u8>>);

impl Fields {
    fn concat_row(&self) -> Vec<u8> {
        let mut out = self.0.join(&b","[..]);
        out.push(b'\n');
        out
    }
    fn shift_date(&mut self, i: usize, days: i32) {
        if let Some(d) = parse_day(&self.0[i]) {
            let mut v = Vec::with_capacity(10);
            d.plus(days).write(&mut v);
            self.0[i] = v;
        }
    }
}

fn parse_num(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn parse_day(v: &[u8]) -> Option<Day> {
    let s = std::str::from_utf8(v).ok()?;
    let d = kjp_domain::ids::parse_date(s)?;
    use chrono::Datelike;
    Some(Day::ymd(d.year(), d.month(), d.day()))
}

/// `3500000` as `3.500.000`.
fn dotted_thousands(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &b) in v.iter().enumerate() {
        if i > 0 && (v.len() - i).is_multiple_of(3) {
            out.push(b'.');
        }
        out.push(b);
    }
    if out == v {
        out.extend_from_slice(b".000");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_quote_and_plant() {
        let mut rng = Rng::new(1, 1);
        let mut c = Chunk::new(false);
        c.begin(F::Foster)
            .id16(3_171_014_403_120_001)
            .text("Panti \"Kasih\", Bunda")
            .date(Day::ymd(2020, 1, 2));
        c.end(&mut rng);
        assert_eq!(
            String::from_utf8(c.buf[F::Foster as usize].clone()).unwrap(),
            "3171014403120001,\"Panti \"\"Kasih\"\", Bunda\",2020-01-02\n"
        );
        assert_eq!(dotted_thousands(b"3500000"), b"3.500.000");
        assert_eq!(dotted_thousands(b"350"), b"350.000");
        c.force_malformed(F::Foster, &mut rng);
        assert_eq!(c.malformed[F::Foster as usize], 1);
        c.force_malformed(F::Njop, &mut rng);
        assert_eq!(c.rows[F::Njop as usize], 1);
    }
}
