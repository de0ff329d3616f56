//! Who may do what: the roles, their scopes, and the authorisation matrix.
//!
//! [`MATRIX`] is the one table the console consults: the guard in front of every staff
//! route looks up the request's method and route pattern there and refuses anything the
//! table does not allow (a route missing from the table is refused to everybody).
//! `Scoped` routes are allowed, and the handler then narrows what is shown to the
//! account's kecamatan or school. docs/console.md holds the same table, checked by a test.

use std::fmt;

/// A staff role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The education office (Dinas Pendidikan): everything.
    Admin,
    /// A school operator: the school's own students (scope: NPSN).
    School,
    /// A kecamatan service-post officer (scope: kecamatan).
    Post,
    /// The kecamatan social office (Dinsos): DTKS referrals (scope: kecamatan).
    Social,
    /// Bank DKI: payments, accounts and return files.
    Bank,
    /// Read-only, everything; every read recorded in the audit log.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Role::Admin, Role::School, Role::Post, Role::Social, Role::Bank, Role::Auditor];

    pub fn parse(raw: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == raw)
    }

    pub fn code(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::School => "school",
            Role::Post => "post",
            Role::Social => "social",
            Role::Bank => "bank",
            Role::Auditor => "auditor",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Dinas Pendidikan (administrator)",
            Role::School => "Operator sekolah",
            Role::Post => "Petugas pos pelayanan kecamatan",
            Role::Social => "Dinas Sosial kecamatan",
            Role::Bank => "Bank DKI",
            Role::Auditor => "Auditor",
        }
    }

    /// What scope the role takes: `None` for everything, else what `--scope` names.
    pub fn scope_kind(self) -> Option<&'static str> {
        match self {
            Role::Admin | Role::Bank | Role::Auditor => None,
            Role::School => Some("NPSN"),
            Role::Post | Role::Social => Some("kecamatan"),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// What an account covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// A kecamatan code, `31.71.01`.
    Kecamatan(String),
    /// A school's NPSN.
    School(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("role {0} covers everything: give no --scope")]
    Unwanted(Role),
    #[error("role {0} needs --scope {1}")]
    Missing(Role, &'static str),
    #[error("{0:?} is not one of Jakarta's 44 kecamatan codes (e.g. 31.71.01)")]
    NotKecamatan(String),
    #[error("{0:?} is not an NPSN (8 digits)")]
    NotNpsn(String),
}

impl Scope {
    /// Checks a scope for a role: a kecamatan that exists, an NPSN that parses.
    pub fn for_role(role: Role, raw: Option<&str>) -> Result<Scope, ScopeError> {
        let raw = raw.map(str::trim).filter(|s| !s.is_empty() && *s != "*");
        match (role.scope_kind(), raw) {
            (None, None) => Ok(Scope::All),
            (None, Some(_)) => Err(ScopeError::Unwanted(role)),
            (Some(kind), None) => Err(ScopeError::Missing(role, kind)),
            (Some("NPSN"), Some(s)) => match kjp_domain::Npsn::parse(s) {
                Ok(_) => Ok(Scope::School(s.to_string())),
                Err(_) => Err(ScopeError::NotNpsn(s.to_string())),
            },
            (Some(_), Some(s)) => {
                if kecamatan_name(s).is_some() {
                    Ok(Scope::Kecamatan(s.to_string()))
                } else {
                    Err(ScopeError::NotKecamatan(s.to_string()))
                }
            }
        }
    }

    /// The stored form.
    pub fn code(&self) -> &str {
        match self {
            Scope::All => "*",
            Scope::Kecamatan(k) | Scope::School(k) => k,
        }
    }

    /// Reads the stored form back for a role.
    pub fn stored(role: Role, raw: &str) -> Scope {
        match role.scope_kind() {
            None => Scope::All,
            Some("NPSN") => Scope::School(raw.to_string()),
            Some(_) => Scope::Kecamatan(raw.to_string()),
        }
    }

    /// Whether a child of this kelurahan (`31.71.01.1001`) and school is covered.
    pub fn covers_child(&self, kelurahan: &str, npsn: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Kecamatan(k) => kelurahan.get(..8) == Some(k.as_str()),
            Scope::School(n) => npsn == n,
        }
    }
}

/// The name of a kecamatan code, if it is one.
pub fn kecamatan_name(code: &str) -> Option<&'static str> {
    kjp_domain::regions::at_level(kjp_domain::regions::RegionLevel::Kecamatan)
        .find(|r| r.code == code)
        .map(|r| r.name)
}

/// Every kecamatan, code and name.
pub fn kecamatans() -> Vec<(&'static str, &'static str)> {
    kjp_domain::regions::at_level(kjp_domain::regions::RegionLevel::Kecamatan)
        .map(|r| (r.code, r.name))
        .collect()
}

/// One role's access to one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Refused (403).
    No,
    /// Allowed, for everything.
    Yes,
    /// Allowed; the handler shows and changes only what the account's scope covers.
    Scoped,
}

impl Access {
    pub fn allowed(self) -> bool {
        self != Access::No
    }
    fn cell(self) -> &'static str {
        match self {
            Access::No => "-",
            Access::Yes => "yes",
            Access::Scoped => "scoped",
        }
    }
}

/// One staff route: method, axum path pattern, what it is for, and each role's access
/// in [`Role::ALL`] order.
#[derive(Debug)]
pub struct RouteRule {
    pub method: &'static str,
    pub path: &'static str,
    pub what: &'static str,
    pub access: [Access; 6],
}

use Access::{No as N, Scoped as S, Yes as Y};

/// The authorisation matrix. Columns: admin, school, post, social, bank, auditor.
pub const MATRIX: &[RouteRule] = &[
    RouteRule {
        method: "GET",
        path: "/staff",
        what: "home: what this account may do",
        access: [Y, Y, Y, Y, Y, Y],
    },
    RouteRule { method: "POST", path: "/staff/logout", what: "sign out", access: [Y, Y, Y, Y, Y, Y] },
    RouteRule {
        method: "GET",
        path: "/staff/password",
        what: "change one's own password",
        access: [Y, Y, Y, Y, Y, Y],
    },
    RouteRule {
        method: "POST",
        path: "/staff/password",
        what: "change one's own password (other sessions end)",
        access: [Y, Y, Y, Y, Y, Y],
    },
    RouteRule {
        method: "POST",
        path: "/staff/child",
        what: "a child's decision with its evidence (NIK in the body)",
        access: [Y, S, S, S, N, Y],
    },
    RouteRule {
        method: "GET",
        path: "/staff/complaints",
        what: "complaints list",
        access: [Y, N, S, S, S, Y],
    },
    RouteRule {
        method: "GET",
        path: "/staff/complaints/new",
        what: "complaint form",
        access: [Y, N, S, N, N, N],
    },
    RouteRule {
        method: "POST",
        path: "/staff/complaints",
        what: "record a complaint",
        access: [Y, N, S, N, N, N],
    },
    RouteRule {
        method: "GET",
        path: "/staff/complaints/{ticket}",
        what: "a complaint, its child and its history",
        access: [Y, N, S, S, S, Y],
    },
    RouteRule {
        method: "POST",
        path: "/staff/complaints/{ticket}/route",
        what: "hand a complaint to another team",
        access: [Y, N, S, S, N, N],
    },
    RouteRule {
        method: "POST",
        path: "/staff/complaints/{ticket}/note",
        what: "add to a complaint's history",
        access: [Y, N, S, S, S, N],
    },
    RouteRule {
        method: "POST",
        path: "/staff/complaints/{ticket}/resolve",
        what: "resolve a complaint (with a correction: education office only)",
        access: [Y, N, S, S, S, N],
    },
    RouteRule {
        method: "GET",
        path: "/staff/review",
        what: "review queue: both sources side by side, what blocks the decree",
        access: [Y, N, S, N, N, Y],
    },
    RouteRule {
        method: "POST",
        path: "/staff/review/resolve",
        what: "settle a review case",
        access: [Y, N, N, N, N, N],
    },
    RouteRule {
        method: "GET",
        path: "/staff/dashboard",
        what: "dashboard with charts",
        access: [Y, S, S, S, Y, Y],
    },
    RouteRule {
        method: "GET",
        path: "/staff/dashboard.csv",
        what: "dashboard as CSV",
        access: [Y, S, S, S, Y, Y],
    },
    RouteRule {
        method: "GET",
        path: "/staff/dashboard.xlsx",
        what: "dashboard as XLSX",
        access: [Y, S, S, S, Y, Y],
    },
    RouteRule {
        method: "GET",
        path: "/staff/audit",
        what: "audit log and chain check",
        access: [Y, N, N, N, N, Y],
    },
    RouteRule { method: "GET", path: "/staff/users", what: "staff accounts", access: [Y, N, N, N, N, Y] },
    RouteRule {
        method: "POST",
        path: "/staff/users",
        what: "create a staff account",
        access: [Y, N, N, N, N, N],
    },
    RouteRule {
        method: "GET",
        path: "/staff/clients",
        what: "agencies' API clients",
        access: [Y, N, N, N, N, Y],
    },
    RouteRule {
        method: "POST",
        path: "/staff/clients",
        what: "create an API client (token shown once)",
        access: [Y, N, N, N, N, N],
    },
    RouteRule {
        method: "POST",
        path: "/staff/clients/{name}/revoke",
        what: "revoke an API client",
        access: [Y, N, N, N, N, N],
    },
];

/// The rule for a method and route pattern, if there is one.
pub fn rule(method: &str, path: &str) -> Option<&'static RouteRule> {
    MATRIX.iter().find(|r| r.method == method && r.path == path)
}

/// A role's access to a method and route pattern: `No` for anything not in the table.
pub fn access(role: Role, method: &str, path: &str) -> Access {
    let col = Role::ALL.iter().position(|r| *r == role).unwrap_or(0);
    rule(method, path).map_or(Access::No, |r| r.access[col])
}

/// The matrix as a Markdown table, as docs/console.md holds it.
pub fn markdown() -> String {
    let mut out = String::from("| method | route | what | ");
    out.push_str(&Role::ALL.map(|r| r.code()).join(" | "));
    out.push_str(" |\n|---|---|---|");
    out.push_str(&"---|".repeat(Role::ALL.len()));
    out.push('\n');
    for r in MATRIX {
        out.push_str(&format!("| {} | `{}` | {} | ", r.method, r.path, r.what));
        out.push_str(&r.access.map(|a| a.cell()).join(" | "));
        out.push_str(" |\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditor_never_changes_anything() {
        for r in MATRIX {
            // Signing out and changing one's own password change no programme data.
            let read =
                r.method == "GET" || ["/staff/child", "/staff/logout", "/staff/password"].contains(&r.path);
            if !read {
                assert_eq!(access(Role::Auditor, r.method, r.path), Access::No, "{} {}", r.method, r.path);
            }
        }
    }

    #[test]
    fn unknown_routes_are_refused() {
        for role in Role::ALL {
            assert_eq!(access(role, "GET", "/staff/secret"), Access::No);
            assert_eq!(access(role, "DELETE", "/staff/complaints"), Access::No);
        }
    }

    #[test]
    fn scopes_are_checked() {
        assert_eq!(Scope::for_role(Role::Admin, None), Ok(Scope::All));
        assert_eq!(Scope::for_role(Role::Post, Some("31.71.01")), Ok(Scope::Kecamatan("31.71.01".into())));
        assert!(matches!(Scope::for_role(Role::Post, Some("31.71.99")), Err(ScopeError::NotKecamatan(_))));
        assert!(matches!(Scope::for_role(Role::Post, None), Err(ScopeError::Missing(..))));
        assert!(matches!(Scope::for_role(Role::Admin, Some("31.71.01")), Err(ScopeError::Unwanted(_))));
        assert!(matches!(Scope::for_role(Role::School, Some("123")), Err(ScopeError::NotNpsn(_))));
        let k = Scope::Kecamatan("31.71.01".into());
        assert!(k.covers_child("31.71.01.1001", "20100001"));
        assert!(!k.covers_child("31.71.02.1001", "20100001"));
    }

    #[test]
    fn docs_hold_the_matrix() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/console.md");
        let docs = std::fs::read_to_string(path).unwrap_or_default();
        let table = markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let (start, end) = ("<!-- matrix:start -->\n", "<!-- matrix:end -->");
            let (Some(a), Some(b)) = (docs.find(start), docs.find(end)) else {
                panic!("docs/console.md needs the markers {start:?} and {end:?}");
            };
            let new = format!("{}{start}{table}{}", &docs[..a], &docs[b..]);
            std::fs::write(path, new).expect("write docs/console.md");
            return;
        }
        assert!(
            docs.contains(&table),
            "docs/console.md does not hold the matrix in code; run UPDATE_DOCS=1 cargo test -p kjp-server docs_hold_the_matrix\n{table}"
        );
    }
}
