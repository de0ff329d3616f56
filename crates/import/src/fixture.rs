//! A tiny hand-made Jakarta: every source file, a few families chosen so that each
//! outcome occurs (eligible poor family, a Bapenda/Samsat car conflict, a car owner, a
//! child who moved out, one missing from the civil registry, a Transjakarta driver's child,
//! a worker above the wage limit, a DTKS address outside Jakarta) plus bad rows. Used by
//! the tests of the stage run and of the status check, so both see the same families.
//! Two young adults are KJMU university students: Rina (eligible) and Tono (whose family
//! is not in DTKS).

use std::path::Path;

fn write(dir: &Path, name: &str, lines: &[&str]) {
    std::fs::write(dir.join(name), lines.join("\n") + "\n").expect("write fixture");
}

/// Writes the fixture files into `dir`.
pub fn write_all(dir: &Path) {
    write(
        dir,
        "dukcapil.csv",
        &[
            "nik,kk,name,sex,birth_date,kelurahan,ktp_dki,domiciled_dki,relationship",
            "3171010403120001,3171010101100001,Adi Saputra,L,2012-03-04,31.71.01.1001,true,true,anak",
            "3171014101800001,3171010101100001,Sri Wahyuni,P,1980-01-01,31.71.01.1001,true,true,kepala_keluarga",
            "3171010505140002,3171010101100002,Bima Putra,L,2014-05-05,31.71.01.1002,true,true,anak",
            "3171010101750001,3171010101100002,Joko Susilo,L,1975-01-01,31.71.01.1002,true,true,kepala_keluarga",
            "3171010606130003,3171010101100003,Candra,L,2013-06-06,31.71.01.1003,true,true,anak",
            "3171010202700001,3171010101100003,Hadi,L,1970-02-02,31.71.01.1003,true,true,kepala_keluarga",
            "3171010707110004,3171010101100004,Dodi,L,2011-07-07,,false,false,anak",
            "3171011009090006,3171010101100006,Eko,L,2009-09-10,31.71.01.1004,true,true,anak",
            "3171010303720001,3171010101100006,Slamet,L,1972-03-03,31.71.01.1004,true,true,kepala_keluarga",
            "3171011111080007,3171010101100007,Fajar,L,2008-11-11,31.71.01.1005,true,true,anak",
            "3171010404760001,3171010101100007,Gunawan,L,1976-04-04,31.71.01.1005,true,true,kepala_keluarga",
            "3171011212070008,3171010101100008,Hendra,L,2007-12-12,31.71.01.1006,true,true,anak",
            // Bad rows: an impossible date, a NIK with a letter, a duplicate of line 2.
            "3171011312070009,3171010101100009,Bad Date,L,2007-13-13,31.71.01.1006,true,true,anak",
            "31710113130700x9,3171010101100009,Bad Nik,L,2007-12-13,31.71.01.1006,true,true,anak",
            "3171010403120001,3171010101100001,Adi Saputra,L,2012-03-04,31.71.01.1001,true,true,anak",
            // Fajar's elder brother works for a low wage: a sibling is not a parent.
            "3171010101000007,3171010101100007,Budi,L,2000-01-01,31.71.01.1005,true,true,anak",
            // University students (KJMU): Adi's sister (DTKS family) and Fajar's brother.
            "3171015505060009,3171010101100001,Rina Saputri,P,2006-05-15,31.71.01.1001,true,true,anak",
            "3171011708050010,3171010101100007,Tono,L,2005-08-17,31.71.01.1005,true,true,anak",
        ],
    );
    write(
        dir,
        "pddikti.csv",
        &[
            "nik,university,university_status,university_accreditation,programme,level,programme_accreditation,priority_field,admission,semester,gpa,status",
            "3171015505060009,Universitas Indonesia,negeri,Unggul,Teknik Informatika,S1,A,false,regular,3,3.40,active",
            "3171011708050010,Universitas Negeri Jakarta,negeri,Unggul,Pendidikan Matematika,S1,A,false,regular,3,3.10,active",
        ],
    );
    write(
        dir,
        "graduates.csv",
        &["nik,npsn,graduation_year", "3171015505060009,20100003,2023", "3171011708050010,20100003,2023"],
    );
    write(dir, "scholarships.csv", &["nik,funder,name,from,to"]);
    write(
        dir,
        "schools.csv",
        &[
            "npsn,name,level,status,kelurahan",
            "20100001,SMP Swasta Harapan,SMP,swasta,31.71.01.1001",
            "20100002,SD Negeri Gambir 01,SD,negeri,31.71.01.1001",
            "20100003,SMA Negeri 1,SMA,negeri,31.71.01.1002",
            "20100004,SMK Swasta Teknik,SMK,swasta,31.71.01.1003",
        ],
    );
    write(
        dir,
        "dapodik.csv",
        &[
            "nik,nisn,npsn,level,grade,active",
            "3171010403120001,0121234501,20100001,SMP,7,true",
            "3171010505140002,0141234502,20100002,SD,5,true",
            "3171010606130003,0131234503,20100002,SD,6,true",
            "3171010707110004,0111234504,20100001,SMP,8,true",
            "3171010808100005,0101234505,20100001,SMP,9,true",
            "3171011009090006,0091234506,20100003,SMA,10,true",
            "3171011111080007,0081234507,20100004,SMK,11,true",
            "3171011212070008,0071234508,20100003,SMA,12,true",
        ],
    );
    write(dir, "emis.csv", &["nik,nisn,npsn,level,grade,active"]);
    write(
        dir,
        "dtks.csv",
        &[
            "nik,kk,decile,listed_since,region",
            "3171014101800001,3171010101100001,2,2019-05-01,3171",
            "3171010101750001,3171010101100002,1,2018-05-01,3171",
            "3171010202700001,3171010101100003,3,2018-05-01,3171",
            "3171011212070008,3171010101100008,2,2020-01-01,3201",
        ],
    );
    write(
        dir,
        "sktm.csv",
        &[
            "nik,number,issued,valid_until",
            "3171010403120001,SKTM/001/2024,2024-08-01,2025-06-30",
            "3171010505140002,SKTM/002/2024,2024-07-01,2025-06-30",
            "3171010606130003,SKTM/003/2024,2024-07-01,2025-06-30",
            "3171011212070008,SKTM/008/2024,2024-07-01,2025-06-30",
            "3171011111080007,SKTM/007/2023,2023-01-01,2023-12-31",
        ],
    );
    write(
        dir,
        "transjakarta.csv",
        &["nik,kk,vehicle_class,active", "3171010303720001,3171010101100006,bus_kecil,true"],
    );
    write(
        dir,
        "wages.csv",
        &[
            "nik,kk,ktp_dki,monthly_wage,period",
            "3171010404760001,3171010101100007,true,7250000,2024-11",
            "3171010101000007,3171010101100007,true,3000000,2024-11",
        ],
    );
    write(dir, "foster.csv", &["nik,care_home,since"]);
    write(dir, "lurah.csv", &["nik,kelurahan,letter_number,issued"]);
    write(
        dir,
        "bapenda.csv",
        &[
            "owner_nik,plate,vehicle_kind,as_of",
            "3171010101750001,B 1 AA,roda4,2023-01-01",
            "3171010202700001,B 2 BB,roda4,2024-01-01",
            "3171010303720001,B 3 CC,roda2,2024-01-01",
        ],
    );
    write(
        dir,
        "samsat.csv",
        &[
            "plate,owner_nik,status,status_date",
            "B 1 AA,3171010101750001,blocked,2024-05-01",
            "B 2 BB,3171010202700001,active,2020-01-01",
        ],
    );
    write(dir, "njop.csv", &["kk,njop,as_of", "3171010101100001,350000000,2024-01-01"]);
    write(dir, "occupations.csv", &["nik,kk,occupation,as_of"]);
    write(dir, "sanctions.csv", &["nik,npsn,category,since,lifted"]);
}
