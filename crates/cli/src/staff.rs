//! `kjp user add`, `kjp audit verify`, and the demo's staff accounts.

use anyhow::Context;
use kjp_server::console::{generate_password, hash_password, Role, Scope};
use kjp_store::Store;

/// One account created, with the password to hand over (shown once, never stored).
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub role: Role,
    pub scope: Scope,
    pub password: String,
}

/// Creates an account with a generated password; the creation is audited.
pub async fn add_user(
    store: &Store,
    username: &str,
    role: &str,
    scope: Option<&str>,
) -> anyhow::Result<NewAccount> {
    kjp_server::console::check_username(username).map_err(anyhow::Error::msg)?;
    let role = Role::parse(role).with_context(|| {
        let all: Vec<&str> = Role::ALL.iter().map(|r| r.code()).collect();
        format!("--role {role:?}: one of {}", all.join(", "))
    })?;
    let scope = Scope::for_role(role, scope)?;
    let password = generate_password();
    let hash = hash_password(&password);
    if !store.add_staff(username, role.code(), scope.code(), &hash).await? {
        anyhow::bail!("username {username:?} is taken");
    }
    store.audit("cli", "user.add", username, &format!("{role} {}", scope.code()), "local").await?;
    Ok(NewAccount { username: username.into(), role, scope, password })
}

/// Gives an account a new generated password and lifts any lock-out; audited.
pub async fn reset_user(store: &Store, username: &str) -> anyhow::Result<String> {
    let password = generate_password();
    if !store.set_staff_password(username, &hash_password(&password)).await? {
        anyhow::bail!("no account named {username:?}");
    }
    store.audit("cli", "user.reset", username, "", "local").await?;
    Ok(password)
}

/// Checks the audit chain: the text to print and whether it holds.
pub async fn verify_audit(store: &Store) -> anyhow::Result<(bool, String)> {
    Ok(match store.verify_audit().await? {
        Ok(n) => (true, format!("audit log: {n} entries, chain intact")),
        Err(breaks) => {
            let mut out = format!("audit log: the chain is BROKEN in {} place(s):\n", breaks.len());
            for b in breaks {
                out.push_str(&format!("  entry {}: {}\n", b.seq, b.problem));
            }
            (false, out)
        }
    })
}

/// One account per role for the demo: the post and social officers of `kecamatan`, the
/// operator of school `npsn`.
pub async fn demo_accounts(store: &Store, kecamatan: &str, npsn: &str) -> anyhow::Result<Vec<NewAccount>> {
    let mut out = Vec::new();
    for (name, role, scope) in [
        ("admin", "admin", None),
        ("sekolah", "school", Some(npsn)),
        ("pos", "post", Some(kecamatan)),
        ("dinsos", "social", Some(kecamatan)),
        ("bank", "bank", None),
        ("auditor", "auditor", None),
    ] {
        out.push(add_user(store, name, role, scope).await?);
    }
    Ok(out)
}

/// The accounts as the terminal shows them.
pub fn accounts_table(accounts: &[NewAccount]) -> String {
    let mut out = String::from("Staff console accounts (passwords shown only now):\n");
    for a in accounts {
        let scope = match &a.scope {
            Scope::All => String::new(),
            Scope::Kecamatan(k) => {
                format!("kecamatan {k} {}", kjp_server::console::access::kecamatan_name(k).unwrap_or(""))
            }
            Scope::School(n) => format!("NPSN {n}"),
        };
        out.push_str(&format!(
            "  {:<9} {:<8} password {}  {}\n",
            a.username,
            a.role.code(),
            a.password,
            scope
        ));
    }
    out
}
